"""Part buffers that fit the agent's memory limit. Pure; one function for the controller's policy and the agent.

The agent holds every part in flight in memory, so what it holds at most is about
``concurrency × part_size + baseline`` (its resident memory without part buffers). The fit keeps that within
``HEADROOM`` (80 %) of the agent's memory limit (its cgroup's ``memory.max`` / ``memory.limit_in_bytes``, else
the RAM), leaving the rest for the encoder, the HTTP client and the kernel's own accounting:

1. the requested concurrency and part size, if they fit;
2. else the same concurrency with smaller parts, down to S3's minimum part (5 MiB, whole MiB);
3. else fewer parts of the minimum size, at least one;
4. else (not even one minimum part fits) concurrency 0: no new parts, and ``fits`` is False so the reason
   says so.

A limit of 0 means "not known" (an older agent): the request is returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_protocol.assignment import MIN_PART_SIZE, MiB

#: the share of the memory limit that baseline plus part buffers may take
HEADROOM = 0.8


@dataclass(frozen=True)
class MemoryFit:
    concurrency: int
    part_size: int
    fits: bool  # False: not even one part of the minimum size fits (concurrency is 0)
    why: str  # "" when the request fitted as it was (or no limit is known)

    def holds(self, baseline_bytes: int) -> int:
        """Bytes held at most with this plan: parts in flight plus the baseline."""
        return self.concurrency * self.part_size + baseline_bytes


def budget(limit_bytes: int, baseline_bytes: int) -> int:
    """Bytes part buffers may take under ``limit_bytes`` (≤ 0: none at all)."""
    return int(limit_bytes * HEADROOM) - max(0, baseline_bytes)


def _mib(nbytes: float) -> str:
    return f"{nbytes / MiB:.0f} MiB"


def fit(concurrency: int, part_size: int, limit_bytes: int, baseline_bytes: int) -> MemoryFit:
    """The largest plan (concurrency ≤ ``concurrency``, part size ≤ ``part_size``) whose buffers plus
    ``baseline_bytes`` stay within ``HEADROOM`` of ``limit_bytes``; see the module's docstring. Total."""
    concurrency, part_size = max(0, concurrency), max(0, part_size)
    room = budget(limit_bytes, baseline_bytes)
    if limit_bytes <= 0 or concurrency == 0 or concurrency * part_size <= room:
        return MemoryFit(concurrency, part_size, True, "")
    where = (
        f"memory: {HEADROOM:.0%} of the {_mib(limit_bytes)} limit − {_mib(max(0, baseline_bytes))} baseline "
        f"= {_mib(max(0, room))} for parts"
    )
    if room < MIN_PART_SIZE:
        return MemoryFit(0, part_size, False, f"{where}: not even one {_mib(MIN_PART_SIZE)} part fits, no uploads")
    smaller = room // concurrency // MiB * MiB
    if smaller >= MIN_PART_SIZE:
        return MemoryFit(concurrency, min(part_size, smaller), True, f"{where}: part {_mib(smaller)}")
    part = min(part_size, MIN_PART_SIZE)
    fewer = room // part
    return MemoryFit(fewer, part, True, f"{where}: {fewer} parts of {_mib(part)} (not {concurrency})")
