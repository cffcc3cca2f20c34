"""``Link``: the engine's uplink as its part threads share it. It holds the token bucket that paces every
part's bytes as they are written and the link-rate estimator that every completed part feeds (``begin`` /
``end``: a part's bytes count when the server answered it, never when they were written), how much the CPU held
its senders back while they measured it (:mod:`edge_agent.engine.senderheld`), and it makes the
:class:`LinkTap` that carries the pacing into one part's request together with that part's deadline.

Thread-safe; the rules are pure and live in :mod:`edge_agent.engine.bucket` (pacing),
:mod:`edge_agent.engine.linkrate` (the estimate) and :mod:`edge_agent.engine.linkguard` (deadlines, guard, ETA).
One writer at a time waits on the bucket; the others queue on a lock behind it, so a cap shared by many parts
wakes one thread per chunk, not all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.engine.bucket import TokenBucket, pace_quantum
from edge_agent.engine.linkguard import carry_bps, part_deadline_s
from edge_agent.engine.linkrate import LinkEstimator
from edge_agent.engine.senderheld import SenderHeld
from edge_agent.transfer.gate import Stopped

Sleep = Callable[[float, Callable[[], bool]], None]  # sleep(seconds, cancelled); raises Stopped


class Link:
    def __init__(
        self, rate_bps: int, stall_timeout_s: float, sleep: Sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._deadline_slack_s = 2 * stall_timeout_s  # the server's answer may take a stall timeout, twice
        self._lock = threading.Lock()  # the bucket and the estimator
        self._pacing = threading.Lock()  # held by the one writer waiting on the bucket
        now = clock()
        self._bucket = TokenBucket(rate_bps, now)
        self._estimator = LinkEstimator(now)
        self._held = SenderHeld()

    def set_cap(self, rate_bps: int) -> None:
        with self._lock:
            if rate_bps != self._bucket.rate_bps:
                self._bucket.set_rate(rate_bps, self._clock())

    def quantum(self) -> int:
        """Bytes per paced write; 0 without a cap."""
        return pace_quantum(self._bucket.rate_bps)

    def pace(self, nbytes: int, cancelled: Callable[[], bool]) -> None:
        """Return when ``nbytes`` may be written under the cap (at once without one)."""
        while not self._pacing.acquire(timeout=0.2):
            if cancelled():
                raise Stopped
        try:
            while True:
                with self._lock:
                    wait = self._bucket.take(nbytes, self._clock())
                if wait <= 0:
                    return
                self._sleep(wait, cancelled)
        finally:
            self._pacing.release()

    def begin(self, nbytes: int) -> int:
        """A part request of ``nbytes`` goes on the wire; returns its handle for :meth:`end`."""
        with self._lock:
            return self._estimator.begin(nbytes, self._clock())

    def end(self, handle: int, completed: bool | None, held: tuple[float, float] | None = None) -> None:
        """The part request ended: ``completed`` (the server answered with its ETag), failed (False), or was
        stopped (None: it does not count). ``held``: (wall, held) seconds of its thread on the wire
        (:class:`edge_agent.transfer.threadhold.ThreadHold`), when they could be read."""
        with self._lock:
            if completed is None:
                self._estimator.cancel(handle, self._clock())
                return
            self._estimator.end(handle, completed, self._clock())
            if held is not None:
                self._held.add(held[1], held[0])

    def rate(self) -> float | None:
        """The measured link rate (bytes/s, smoothed); None until measured."""
        with self._lock:
            return self._estimator.rate(self._clock())

    def rate_so_far(self) -> float | None:
        """:meth:`rate`, or before it is measured the rate of the parts answered so far (None if none was)."""
        with self._lock:
            return self._estimator.rate_so_far(self._clock())

    def sender_held(self) -> float | None:
        """The share of the parts' time on the wire their threads ran or waited to run (smoothed); None until
        measured (:mod:`edge_agent.engine.senderheld`)."""
        with self._lock:
            return self._held.share

    def tap(self, nbytes: int, attempt: int, streams: int, cancelled: Callable[[], bool]) -> LinkTap:
        """The tap of one request of a part of ``nbytes`` (``attempt`` 0 first), ``streams`` sharing the link."""
        rate = self.rate()
        deadline = part_deadline_s(nbytes, rate, streams, attempt, self._deadline_slack_s)
        return LinkTap(self, deadline, carry_bps(rate, streams), cancelled)


@dataclass(frozen=True)
class LinkTap:
    """A :class:`edge_agent.transfer.ports.PartTap` on a :class:`Link`."""

    link: Link
    deadline_s: float
    carry_bps: float
    is_cancelled: Callable[[], bool]

    def quantum(self) -> int:
        return self.link.quantum()

    def pace(self, nbytes: int) -> None:
        self.link.pace(nbytes, self.is_cancelled)

    def cancelled(self) -> bool:
        return self.is_cancelled()
