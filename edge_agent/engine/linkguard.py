"""What the measured link rate (:mod:`.linkrate`) decides: the thin-link guard, each part's deadline, when a
part's stall timer starts, the backlog's ETA. Pure functions; the rate is passed in (None = not measured yet:
no guard and no ETA; deadlines and the stall rule assume ``UNMEASURED_BPS``).

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

**When a request is stalled.** The stall timer (``stall_timeout_s``, default ``STALL_TIMEOUT_S``) runs from a
part request's last progress (a byte written, or acknowledged by the next TCP hop), but never starts before
``carried_by = start + written / carry``: the time the link would need to pass on every byte written for the
request so far, at ``carry = CARRY_FRACTION * R / c`` (half the part's share of the measured rate; until the
link is measured ``R`` is ``UNMEASURED_BPS``). Bytes written but not yet through the link sit in our kernel's
send queue or in a middlebox ahead of the link; a middlebox whose buffer is smaller than a part closes its TCP
window when it is full and opens it only after it has passed a good part of it on, and the kernel's zero-window
probes back off up to 120 s, so no byte may be acknowledged for minutes while the link is busy with ours. That
wait is the link's pace, not a stall. So a path that keeps moving at (at least half) the measured rate is never
cut, and a dead path is cut ``stall_timeout_s`` after ``max(last progress, carried_by)``: at most
``stall_timeout_s + written / carry`` after the request began, which is at most half of the part's deadline
without its slack (``written`` is at most the part plus its headers). On a measured 2 MB/s link with one part of
8 MiB in flight that is 8 s more than the stall timeout; on 64 kbit/s with one part of 5 MiB, 22 minutes;
before anything is measured with 4 parts of 5 MiB in flight, the first parts' grace is up to 2.9 h (a path that
answers nothing at all is still ended by the kernel's own retransmission limit, ``tcp_retries2``, ~15 min).
Requests without a part (create, complete, list, HEAD) have no ``carry``: the plain stall timer.

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
CARRY_FRACTION = 0.5  # the stall rule credits the link with half its measured share (the estimate may be high)


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


def _share(link_bps: float | None, streams: int) -> float:
    """One of ``streams`` parts' share of the link (None or 0: not measured yet, ``UNMEASURED_BPS``)."""
    rate = link_bps if link_bps is not None and link_bps > 0 else UNMEASURED_BPS
    return rate / max(1, streams)


def part_deadline_s(nbytes: int, link_bps: float | None, streams: int, attempt: int, slack_s: float) -> float:
    """How long one part request of ``nbytes`` may take, when ``streams`` parts share a link of ``link_bps``
    (None or 0: not measured yet, ``UNMEASURED_BPS`` is assumed)."""
    share = _share(link_bps, streams)
    return slack_s + nbytes / (DEADLINE_FRACTION * share) * (1 << min(max(0, attempt), MAX_DOUBLINGS))


def carry_bps(link_bps: float | None, streams: int) -> float:
    """The rate at which the stall rule assumes a part request's written bytes leave the queues between it and
    the link: ``CARRY_FRACTION`` of its share (``UNMEASURED_BPS`` before the link is measured)."""
    return CARRY_FRACTION * _share(link_bps, streams)


def stall_clock_start(progress_at: float, started: float, written: int, carry: float | None) -> float:
    """When a request's stall timer starts running: at its last progress (a byte written or acknowledged), but
    never before the link, carrying ``carry`` bytes/s from the request's start, could have passed on every byte
    written so far (``carry`` None: at the last progress)."""
    if carry is None or carry <= 0:
        return progress_at
    return max(progress_at, started + written / carry)


def backlog_eta_s(backlog_bytes: int, link_bps: float | None) -> float | None:
    """Seconds to upload the backlog at the measured rate; None when the rate is unknown or zero."""
    if link_bps is None or link_bps <= 0:
        return None
    return backlog_bytes / link_bps
