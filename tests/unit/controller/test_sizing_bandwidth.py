"""Part size, concurrency and max-min bandwidth sharing: tables and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policy import PolicyConfig
from controller.policy.bandwidth import Claim, age_weight, max_min_share
from controller.policy.sizing import full_concurrency, part_size
from fleet_plan.thermal import compression_for, scaled_concurrency

MIB = 1024 * 1024
GIB = 1024 * MIB
CFG = PolicyConfig()


@pytest.mark.parametrize(
    ("ram", "throughput", "previous", "expected"),
    [
        (4 * GIB, 0.0, None, 8 * MIB),  # nothing measured yet: default
        (4 * GIB, 0.0, 32 * MIB, 32 * MIB),  # idle: keep what it had
        (4 * GIB, 200_000.0, None, 5 * MIB),  # slow link
        (4 * GIB, 2_000_000.0, None, 8 * MIB),
        (4 * GIB, 5_000_000.0, None, 16 * MIB),
        (4 * GIB, 12_500_000.0, None, 32 * MIB),
        (4 * GIB, 100_000_000.0, None, 64 * MIB),  # fast link, capped
        (512 * MIB, 100_000_000.0, None, 64 * MIB),  # 128 MiB budget: half of it
        (128 * MIB, 100_000_000.0, None, 16 * MIB),
        (16 * MIB, 100_000_000.0, None, 5 * MIB),  # never below the S3 minimum
        (0, 12_500_000.0, None, 32 * MIB),  # RAM unknown
    ],
)
def test_part_size(ram: int, throughput: float, previous: int | None, expected: int) -> None:
    assert part_size(ram, throughput, previous, CFG) == expected


@given(st.floats(min_value=1_000_000, max_value=1e9), st.floats(min_value=0.9, max_value=1.1))
def test_part_size_ignores_small_jitter_mostly_and_stays_in_bounds(throughput: float, jitter: float) -> None:
    a, b = part_size(8 * GIB, throughput, None, CFG), part_size(8 * GIB, throughput * jitter, None, CFG)
    assert 5 * MIB <= a <= 64 * MIB
    assert max(a, b) <= 2 * min(a, b)


@pytest.mark.parametrize(
    ("cores", "ram", "part", "expected"),
    [
        (4, 4 * GIB, 16 * MIB, 8),  # max_concurrency
        (1, 4 * GIB, 16 * MIB, 2),  # 2 × cores
        (4, 512 * MIB, 64 * MIB, 2),  # 128 MiB budget ÷ 64 MiB
        (4, 0, 16 * MIB, 8),  # RAM unknown
        (4, 64 * MIB, 64 * MIB, 1),  # at least one
    ],
)
def test_full_concurrency(cores: int, ram: int, part: int, expected: int) -> None:
    assert full_concurrency(cores, ram, part, CFG)[0] == expected


@pytest.mark.parametrize(
    ("level", "full", "concurrency", "compression"),
    [(0, 8, 8, 5), (1, 8, 8, 1), (2, 8, 4, 0), (3, 8, 2, -1), (4, 8, 2, -1), (3, 1, 1, -1)],
)
def test_heat_lowers_compression_first_then_uploads_then_raw(
    level: int, full: int, concurrency: int, compression: int
) -> None:
    assert scaled_concurrency(full, level) == concurrency
    assert compression_for(level, CFG.default_compression_level) == compression


@pytest.mark.parametrize(
    ("age_s", "backlog", "weight"),
    [(0, False, 1), (99_999, False, 1), (0, True, 1), (6 * 3600, True, 2), (1e9, True, 8)],
)
def test_age_weight(age_s: float, backlog: bool, weight: int) -> None:
    assert age_weight(age_s, backlog) == weight


def test_max_min_gives_unused_share_to_the_others() -> None:
    shares = max_min_share(10_000_000, {"small": Claim(1_000_000, 1), "a": Claim(1e12, 1), "b": Claim(1e12, 1)})
    assert shares == {"a": 4_500_000, "b": 4_500_000, "small": 1_000_000}


def test_max_min_weights_by_age() -> None:
    shares = max_min_share(9_000_000, {"old": Claim(1e12, 2), "new": Claim(1e12, 1)})
    assert shares == {"new": 3_000_000, "old": 6_000_000}


claims = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.builds(
        Claim, st.integers(min_value=1, max_value=10**10).map(float), st.integers(min_value=1, max_value=8).map(float)
    ),
    min_size=1,
    max_size=40,
)


@given(st.integers(min_value=100_000, max_value=10**10), claims)
def test_shares_never_exceed_the_uplink_nor_a_demand(capacity: int, claims: dict[str, Claim]) -> None:
    shares = max_min_share(capacity, claims)
    assert set(shares) == set(claims)
    assert sum(shares.values()) <= capacity
    for key, share in shares.items():
        assert 1 <= share <= max(1, claims[key].demand)


@given(st.integers(min_value=100_000, max_value=10**10), claims)
def test_max_min_fairness_unsatisfied_agents_share_by_weight(capacity: int, claims: dict[str, Claim]) -> None:
    """Nobody below its demand gets less per unit of weight than anybody else (before rounding)."""
    shares = max_min_share(capacity, claims)
    hungry = [k for k, c in claims.items() if shares[k] < c.demand * 0.89]
    per_weight = {k: shares[k] / claims[k].weight for k in claims}
    for key in hungry:
        assert per_weight[key] >= max(per_weight.values()) * 0.9 - 1
