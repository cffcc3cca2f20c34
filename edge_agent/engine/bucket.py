"""One token bucket for the engine's total upload rate. The clock is passed in (s3transfer ``bandwidth.py`` style).

Bytes are charged before they are sent. A charge larger than what is in the bucket is still granted, as debt:
the caller waits the returned delay, and later charges wait behind it, so the long-run rate never exceeds
``rate_bps`` however big a part is. ``rate_bps == 0`` means no cap. ``burst`` bytes may go out at once after
an idle period.
"""

from __future__ import annotations


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

    def set_rate(self, rate_bps: int, now: float, burst: int | None = None) -> None:
        if rate_bps < 0:
            raise ValueError(f"rate must be >= 0, got {rate_bps}")
        self._refill(now)
        self._rate = rate_bps
        self._burst = rate_bps if burst is None else burst  # one second's worth by default
        self._tokens = min(self._tokens, float(self._burst))

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        if self._rate:
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)

    def charge(self, nbytes: int, now: float) -> float:
        """Take ``nbytes``; returns how many seconds the caller must wait before sending them."""
        if nbytes < 0:
            raise ValueError(f"cannot charge {nbytes} bytes")
        if not self._rate:
            return 0.0
        self._refill(now)
        self._tokens -= nbytes
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
