"""Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").

``delay = u * min(cap, base * 2**attempt)`` with ``u`` uniform in [0, 1) supplied by the caller, so the
function is pure and tests pass ``u`` directly.
"""

from __future__ import annotations

BASE_S = 0.5
CAP_S = 30.0


def backoff_ceiling(attempt: int, base_s: float = BASE_S, cap_s: float = CAP_S) -> float:
    """The largest delay for retry number ``attempt`` (0 = the first retry)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    return min(cap_s, base_s * 2.0 ** min(attempt, 64))


def full_jitter(attempt: int, u: float, base_s: float = BASE_S, cap_s: float = CAP_S) -> float:
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must be in [0, 1), got {u}")
    return u * backoff_ceiling(attempt, base_s, cap_s)
