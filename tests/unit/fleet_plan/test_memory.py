"""The memory fit (``fleet_plan.memory.fit``): tables for the steps, properties for the inequality."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_plan.memory import HEADROOM, fit
from fleet_protocol.assignment import MAX_CONCURRENCY, MAX_PART_SIZE, MIN_PART_SIZE, MiB

LIMIT = 256 * MiB  # the Ansible role's MemoryMax=256M
BASE = 60 * MiB  # 0.8 × 256 − 60 = 144.8 MiB for parts


@pytest.mark.parametrize(
    ("concurrency", "part", "limit", "baseline", "expect", "fits"),
    [
        (8, 32 * MiB, 0, BASE, (8, 32 * MiB), True),  # no limit known (older agent): unchanged
        (4, 32 * MiB, LIMIT, BASE, (4, 32 * MiB), True),  # 128 MiB fits
        (8, 32 * MiB, LIMIT, BASE, (8, 18 * MiB), True),  # smaller parts first
        (8, 16 * MiB, LIMIT, BASE, (8, 16 * MiB), True),
        (64, 8 * MiB, LIMIT, BASE, (28, 5 * MiB), True),  # minimum parts, then fewer of them
        (8, 32 * MiB, LIMIT, 200 * MiB, (0, 32 * MiB), False),  # not even one 5 MiB part
        (0, 32 * MiB, LIMIT, 200 * MiB, (0, 32 * MiB), True),  # nothing in flight holds nothing
        (2, MAX_PART_SIZE, 4096 * MiB, 0, (2, 1638 * MiB), True),
    ],
)
def test_steps(concurrency: int, part: int, limit: int, baseline: int, expect: tuple[int, int], fits: bool) -> None:
    got = fit(concurrency, part, limit, baseline)
    assert (got.concurrency, got.part_size) == expect
    assert got.fits is fits
    assert bool(got.why) == ((got.concurrency, got.part_size) != (concurrency, part) or not fits)


def test_the_reason_says_when_nothing_fits() -> None:
    assert "not even one 5 MiB part fits" in fit(8, 32 * MiB, LIMIT, 200 * MiB).why


@given(
    st.integers(0, MAX_CONCURRENCY),
    st.integers(MIN_PART_SIZE, MAX_PART_SIZE),
    st.integers(1, 2**45),
    st.integers(0, 2**45),
)
def test_the_plan_fits_and_never_asks_for_more(concurrency: int, part: int, limit: int, baseline: int) -> None:
    got = fit(concurrency, part, limit, baseline)
    assert got.concurrency <= concurrency
    assert got.part_size <= part
    if got.concurrency:
        assert got.part_size >= MIN_PART_SIZE
        assert got.holds(baseline) <= limit * HEADROOM
    # concurrency 0 only when asked for, or when one minimum part cannot fit
    assert got.concurrency > 0 or concurrency == 0 or MIN_PART_SIZE + baseline > limit * HEADROOM
    assert got.fits is (got.concurrency > 0 or concurrency == 0)


@given(st.integers(1, MAX_CONCURRENCY), st.integers(MIN_PART_SIZE, MAX_PART_SIZE), st.integers(0, 2**45))
def test_the_minimum_part_comes_before_fewer_parts(concurrency: int, part: int, limit: int) -> None:
    got = fit(concurrency, part, limit, 0)
    if 0 < got.concurrency < concurrency:
        assert got.part_size == MIN_PART_SIZE
