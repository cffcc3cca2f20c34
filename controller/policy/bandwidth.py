"""Weighted max-min fair sharing of a site's uplink (water filling); pure.

Shares are rounded down to two significant digits so that small changes in backlog do not change
every agent's assignment, and so the sum never exceeds the uplink.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from fleet_protocol.windows import parse_windows

#: Backlog age that adds one unit of weight, and the largest weight.
AGE_STEP_S = 6 * 3600.0
MAX_WEIGHT = 8


@dataclass(frozen=True)
class Claim:
    demand: float
    weight: float


def age_weight(backlog_oldest_age_s: float, has_backlog: bool) -> int:
    """1 for an idle agent or a fresh backlog, +1 per 6 h of the oldest file's age, at most 8."""
    if not has_backlog or not backlog_oldest_age_s > 0:  # (also NaN)
        return 1
    return int(min(MAX_WEIGHT, 1 + min(backlog_oldest_age_s, MAX_WEIGHT * AGE_STEP_S) // AGE_STEP_S))


def _round_down(value: float) -> int:
    whole = int(value) if math.isfinite(value) else 1
    if whole < 100:
        return max(1, whole)
    scale: int = 10 ** (len(str(whole)) - 2)
    return whole // scale * scale


def max_min_share(capacity: int, claims: Mapping[str, Claim]) -> dict[str, int]:
    """Weighted max-min fair allocation of ``capacity`` among ``claims``; each share ≥ 1 B/s."""
    remaining = float(capacity)
    open_claims = dict(sorted(claims.items()))
    shares: dict[str, float] = {}
    while open_claims:
        total_weight = sum(c.weight for c in open_claims.values())
        unit = remaining / total_weight
        satisfied = {key: c for key, c in open_claims.items() if c.demand <= unit * c.weight}
        if not satisfied:
            for key, claim in open_claims.items():
                shares[key] = unit * claim.weight
            break
        for key, claim in satisfied.items():
            shares[key] = claim.demand
            remaining -= claim.demand
            del open_claims[key]
    return {key: _round_down(value) for key, value in sorted(shares.items())}


def inside_windows(windows: tuple[str, ...], now: datetime, tz: tzinfo) -> bool:
    """Whether an agent with upload ``windows`` (``()`` = always) may upload at ``now``, on the site's clock ``tz``.

    Only agents inside their window share the site's uplink: the others do not send (docs/controller.md)."""
    if not windows:
        return True
    local = now.astimezone(tz)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return any(window.contains(seconds) for window in parse_windows(windows))
