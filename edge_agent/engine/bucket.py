"""One token bucket for the engine's total upload rate, and the size of the chunks that pace it (clock passed in).

The bytes are paced as they are written, the way rclone's ``--bwlimit`` does it: a writer asks for one small
chunk (``pace_quantum(rate)``: 1/50 s of the rate, 256 B-64 KiB), ``take`` either gives it (0.0) or says how long
to wait before asking again, and the chunk is written the moment it is given. Tokens are taken when the bytes
go, not when they are asked for, so a writer that wakes late (a loaded machine) sends later, never in a burst.
The bucket holds at most ``burst`` bytes (``pace_burst(rate)``: two chunks), so the bytes written in ANY interval
of T seconds are at most ``burst + rate * T``: within 4 % of the cap over any one-second window.
``rate_bps == 0`` means no cap.
"""

from __future__ import annotations

PACE_DIVISOR = 50  # a pacing chunk is 1/50 s of the rate ...
MIN_QUANTUM = 256  # ... but at least 256 B (below ~13 KB/s a chunk is more than 2 % of a second) ...
MAX_QUANTUM = 64 * 1024  # ... and at most 64 KiB
EPSILON_BYTES = 1e-6  # less is rounding: a wait for it would not move a float clock


def pace_quantum(rate_bps: int) -> int:
    """The most bytes written per pacing step; 0 when there is no cap (write as fast as the socket takes)."""
    if rate_bps <= 0:
        return 0
    return max(MIN_QUANTUM, min(MAX_QUANTUM, rate_bps // PACE_DIVISOR))


def pace_burst(rate_bps: int) -> int:
    """What the bucket holds at most: two chunks (a writer that oversleeps a little does not lose the rate)."""
    return 2 * pace_quantum(rate_bps)


class TokenBucket:
    def __init__(self, rate_bps: int, now: float, burst: int | None = None) -> None:
        self._rate = 0
        self._burst = 0
        self._tokens = 0.0
        self._stamp = now
        self.set_rate(rate_bps, now, burst)

    @property
    def rate_bps(self) -> int:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    def set_rate(self, rate_bps: int, now: float, burst: int | None = None) -> None:
        """``burst`` defaults to ``pace_burst(rate_bps)``."""
        if rate_bps < 0:
            raise ValueError(f"rate must be >= 0, got {rate_bps}")
        self._refill(now)
        self._rate = rate_bps
        self._burst = pace_burst(rate_bps) if burst is None else burst
        self._tokens = min(self._tokens, float(self._burst))

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        if self._rate:
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)

    def take(self, nbytes: int, now: float) -> float:
        """Take ``nbytes`` if the bucket holds them and return 0.0 (write them now); else take nothing and
        return how many seconds to wait before asking again. A request above ``burst`` is given once the bucket
        is full, as debt that later requests wait for."""
        if nbytes < 0:
            raise ValueError(f"cannot take {nbytes} bytes")
        if not self._rate:
            return 0.0
        self._refill(now)
        short = min(float(nbytes), float(self._burst)) - self._tokens
        if short > EPSILON_BYTES:
            return short / self._rate
        self._tokens -= nbytes
        return 0.0
