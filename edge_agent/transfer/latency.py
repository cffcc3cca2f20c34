"""``RecentLatency``: the median of the latencies measured lately (thread-safe), for the agent's telemetry.

Only the last ``keep`` samples of the last ``window_s`` seconds count: an agent that measured nothing lately
reports ``None`` (not measured) rather than an old figure."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 600.0
KEEP = 64


class RecentLatency:
    def __init__(self, window_s: float = WINDOW_S, keep: int = KEEP, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        if seconds >= 0:
            with self._lock:
                self._samples.append((self._clock(), seconds))

    def median(self) -> float | None:
        since = self._clock() - self.window_s
        with self._lock:
            recent = [seconds for at, seconds in self._samples if at >= since]
        return _median(recent) if recent else None


def _median(values: list[float]) -> float:
    """``statistics.median``, without loading ``statistics`` (and ``decimal``, ``fractions``) on the upload path."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
