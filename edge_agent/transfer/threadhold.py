"""The calling thread's time on the CPU and in the run queue, from ``/proc/thread-self/schedstat`` (Linux with
``CONFIG_SCHED_INFO``, which delay accounting and schedstats select; Debian's and Raspberry Pi OS's kernels have
it). The run-queue time includes time throttled by a CFS quota: the thread stays runnable while its group waits.
Elsewhere (another OS, the file missing or unreadable) every reading is None and the caller does without."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

SCHEDSTAT = Path("/proc/thread-self/schedstat")


def held_s(path: Path = SCHEDSTAT) -> float | None:
    """Seconds this thread has run plus waited to run since it started, or None if not readable."""
    try:
        fields = path.read_text().split()
        return (int(fields[0]) + int(fields[1])) / 1e9
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class ThreadHold:
    """A mark in the calling thread's times; :meth:`since` is read in the same thread."""

    wall: float
    held: float | None

    @classmethod
    def mark(cls) -> ThreadHold:
        return cls(time.monotonic(), held_s())

    def since(self) -> tuple[float, float] | None:
        """(wall seconds, held seconds) since the mark, or None if the thread's times are not readable."""
        now = held_s()
        if self.held is None or now is None:
            return None
        return time.monotonic() - self.wall, max(0.0, now - self.held)
