"""What the measured link rate (:mod:`.linkrate`) decides: the thin-link guard, each part's deadline, the
backlog's ETA. Pure functions; the rate is passed in (None = not measured yet: no guard, no deadline, no ETA).

**The thin-link guard.** A part must be able to finish within ``SANE_PART_S`` (80 s) at its share of the
link. With ``c`` parts in flight of ``s`` bytes on a link of ``R`` bytes/s each part moves at ``R / c``, so the
assignment is kept while ``c * s <= R * SANE_PART_S``. Otherwise the link is thin and the engine, whatever the
assignment says, uses the minimum part size (5 MiB) for new uploads and as many parts in flight as still
finish in time: ``c' = max(1, min(c, floor(R * SANE_PART_S / 5 MiB)))``. At the minimum part size that is one
stream per 64 KiB/s of link (256 KiB/s: 4 streams; below 128 KiB/s: 1). An upload already started keeps
its part size (its parts are fixed in the journal); only the number in flight drops.

**A part's deadline.** A part request may take ``slack + size / (DEADLINE_FRACTION * R / c)``: four times
what its share of the measured link needs, plus slack for the server's answer. Each retry of the same part
doubles the allowance, so a link that got slower than the estimate delays a part, never loses it forever. Until
the link is measured, ``R`` is ``UNMEASURED_BPS`` (64 kbit/s, the thinnest link the agent is tested on): a
long deadline, but one. The deadline is what bounds the wait for the server's answer once every byte of the
part was written and acknowledged by the next hop (a buffering middlebox may hold the whole part and pass it
on at the link's pace): the stall timer does not (see :mod:`edge_agent.transfer.wire`).

**ETA.** ``backlog bytes / R``: the queued recordings at their original size (FLAC stores fewer), so an upper
bound while the link keeps its rate; idle time and closed windows are not in it.
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.engine.limits import Limits
from fleet_protocol.assignment import MIN_PART_SIZE

SANE_PART_S = 80.0
STALL_TIMEOUT_S = 60.0  # the default: a request that moves nothing this long is a stall
DEADLINE_FRACTION = 0.25
MAX_DOUBLINGS = 10
UNMEASURED_BPS = 8000.0  # the rate a deadline assumes before the link is measured: 64 kbit/s


def guard(limits: Limits, link_bps: float | None) -> Limits:
    """The limits the engine applies: ``limits`` itself, or on a thin link fewer parts in flight and the
    minimum part size."""
    if link_bps is None or limits.concurrency <= 0:
        return limits
    budget = link_bps * SANE_PART_S  # bytes the link moves in the time one round of parts may take
    if limits.concurrency * limits.part_size <= budget:
        return limits
    concurrency = max(1, min(limits.concurrency, int(budget // MIN_PART_SIZE)))
    return replace(limits, concurrency=concurrency, part_size=MIN_PART_SIZE)  # (a valid part is never smaller)


def part_deadline_s(nbytes: int, link_bps: float | None, streams: int, attempt: int, slack_s: float) -> float:
    """How long one part request of ``nbytes`` may take, when ``streams`` parts share a link of ``link_bps``
    (None or 0: not measured yet, ``UNMEASURED_BPS`` is assumed)."""
    rate = link_bps if link_bps is not None and link_bps > 0 else UNMEASURED_BPS
    share = rate / max(1, streams)
    return slack_s + nbytes / (DEADLINE_FRACTION * share) * (1 << min(max(0, attempt), MAX_DOUBLINGS))


def backlog_eta_s(backlog_bytes: int, link_bps: float | None) -> float | None:
    """Seconds to upload the backlog at the measured rate; None when the rate is unknown or zero."""
    if link_bps is None or link_bps <= 0:
        return None
    return backlog_bytes / link_bps
