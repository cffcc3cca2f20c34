"""The encode-rate estimator: per-level EWMA weighted by file size; the wire's list form."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.encoderate import WEIGHT_BYTES, EncodeRates, as_list

MiB = 1024 * 1024


def test_the_probe_seeds_and_real_encodes_refine() -> None:
    rates = EncodeRates({5: 10e6, 8: 5e6, 12: 1.0, 3: math.nan})
    assert rates.rates() == {5: 10e6, 8: 5e6}
    assert rates.ratios() == {}
    rates.observe(5, WEIGHT_BYTES, WEIGHT_BYTES / 20e6, stored_bytes=60, original_bytes=100)  # 20 MB/s, 0.6
    moved = 1 - math.exp(-1)
    assert rates.rates()[5] == pytest.approx(10e6 + moved * 10e6)
    assert rates.ratios() == {5: pytest.approx(0.6)}  # the first ratio is taken as it is
    rates.observe(5, WEIGHT_BYTES, 1.0, stored_bytes=80, original_bytes=100)
    assert rates.ratios()[5] == pytest.approx(0.6 + moved * 0.2)


def test_a_probe_that_ends_after_a_real_encode_fills_only_the_levels_not_measured() -> None:
    rates = EncodeRates()
    rates.observe(5, WEIGHT_BYTES, WEIGHT_BYTES / 20e6, stored_bytes=60, original_bytes=100)
    rates.add_probed({5: 1.0, 8: 5e6, 12: 1.0, 3: math.nan})
    assert rates.rates() == {5: pytest.approx(20e6), 8: 5e6}  # the real encode of level 5 stays


@pytest.mark.parametrize(
    ("name", "level", "wav", "seconds", "stored", "original"),
    [
        ("unknown level", 9, MiB, 1.0, 1, 2),
        ("no bytes", 5, 0, 1.0, 1, 2),
        ("NaN time", 5, MiB, math.nan, 0, 0),
        ("no time", 5, MiB, 0.0, 0, 0),
    ],
)
def test_samples_that_say_nothing_are_ignored(
    name: str, level: int, wav: int, seconds: float, stored: int, original: int
) -> None:
    rates = EncodeRates({5: 10e6})
    rates.observe(level, wav, seconds, stored, original)
    assert rates.rates() == {5: 10e6}
    assert rates.ratios() == {}


def test_a_small_file_moves_the_average_a_little() -> None:
    rates = EncodeRates({5: 10e6})
    rates.observe(5, MiB, MiB / 20e6, 1, 2)
    assert 10e6 < rates.rates()[5] < 10.2e6


@given(
    st.lists(
        st.tuples(
            st.integers(0, 8),
            st.integers(1, 2**40),
            st.floats(1e-6, 1e6),
            st.integers(0, 2**40),
            st.integers(1, 2**40),
        ),
        max_size=30,
    )
)
def test_estimates_stay_between_the_samples(samples: list[tuple[int, int, float, int, int]]) -> None:
    rates = EncodeRates()
    seen: dict[int, list[float]] = {}
    for level, wav, seconds, stored, original in samples:
        rates.observe(level, wav, seconds, stored, original)
        seen.setdefault(level, []).append(wav / seconds)
    for level, value in rates.rates().items():
        assert min(seen[level]) * (1 - 1e-9) <= value <= max(seen[level]) * (1 + 1e-9)


def test_as_list_is_indexed_by_level_and_bounded() -> None:
    assert as_list({}, 2.0) == []
    assert as_list({0: 1.5, 8: 5.0}, 2.0) == [1.5, 0, 0, 0, 0, 0, 0, 0, 2.0]
    assert as_list({3: math.inf}, 2.0)[3] == 0.0
