"""The slot gate: at most ``concurrency`` parts in flight (being filled or sent) across all files, and no new
part while paused or outside the upload windows. A slot is taken before a part buffer starts to fill, so a
file's encoder waits here when all slots are busy (backpressure). Changing the limits takes effect at once for
new parts; parts in flight finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge_agent.engine.limits import Limits
from edge_agent.engine.windows import parse_windows, seconds_until_open


class Stopped(Exception):
    """The engine (or this file's job) is stopping."""


def local_seconds(now: float) -> float:
    lt = time.localtime(now)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (now % 1)


class SlotGate:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.time, poll_s: float = 30.0) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._poll_s = poll_s
        self._in_use = 0
        self.set_limits(limits)

    def set_limits(self, limits: Limits) -> None:
        with self._cond:
            self._limits = limits
            self._windows = parse_windows(limits.windows)
            self._cond.notify_all()

    @property
    def in_use(self) -> int:
        return self._in_use

    def closed_for(self) -> float:
        """0 when new parts may start now; else a hint how long until they may (inf while paused)."""
        lim = self._limits
        if lim.stopped:
            return float("inf")
        if lim.upload_now:
            return 0.0
        return seconds_until_open(self._windows, local_seconds(self._clock()))

    def wait_open(self, cancelled: Callable[[], bool]) -> None:
        with self._cond:
            while (wait := self.closed_for()) > 0:
                if cancelled():
                    raise Stopped
                self._cond.wait(min(wait, self._poll_s, 1.0))

    def acquire(self, cancelled: Callable[[], bool]) -> None:
        with self._cond:
            while True:
                if cancelled():
                    raise Stopped
                wait = self.closed_for()
                if wait <= 0 and self._in_use < self._limits.concurrency:
                    self._in_use += 1
                    return
                self._cond.wait(min(wait, self._poll_s, 1.0) if wait > 0 else 1.0)

    def release(self) -> None:
        with self._cond:
            self._in_use -= 1
            assert self._in_use >= 0
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
