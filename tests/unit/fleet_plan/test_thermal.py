"""What a thermal level does to settings (``fleet_plan.thermal.throttle``), shared by the policy and the agent's
guard; the levels and hysteresis themselves are tested through the policy (tests/unit/controller/test_thermal.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_plan.thermal import (
    CRITICAL,
    HOT,
    NORMAL,
    VERY_HOT,
    WARM,
    Reading,
    ThermalLimits,
    ThermalState,
    step,
    throttle,
)
from fleet_protocol.assignment import MAX_COMPRESSION_LEVEL, MAX_CONCURRENCY, RAW, AssignmentSettings, MiB

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = AssignmentSettings(concurrency=8, part_size=8 * MiB, compression_level=5)


@pytest.mark.parametrize(
    ("level", "concurrency", "compression", "paused"),
    [
        (NORMAL, 8, 5, False),
        (WARM, 8, 1, False),
        (HOT, 4, 0, False),
        (VERY_HOT, 2, RAW, False),
        (CRITICAL, 2, RAW, True),
    ],
)
def test_each_level_lowers_the_settings(level: int, concurrency: int, compression: int, paused: bool) -> None:
    got = throttle(BASE, level)
    assert (got.concurrency, got.compression_level, got.paused) == (concurrency, compression, paused)
    assert got.part_size == BASE.part_size


def test_raw_stays_raw_when_warm() -> None:
    """Raw costs no CPU: a warm agent does not start encoding."""
    assert throttle(AssignmentSettings(compression_level=RAW), WARM).compression_level == RAW


@given(
    st.integers(0, MAX_CONCURRENCY),
    st.integers(RAW, MAX_COMPRESSION_LEVEL),
    st.booleans(),
    st.integers(NORMAL, CRITICAL),
)
def test_throttling_never_raises_anything(concurrency: int, compression: int, paused: bool, level: int) -> None:
    settings = AssignmentSettings(concurrency=concurrency, compression_level=compression, paused=paused)
    got = throttle(settings, level)
    assert got.concurrency <= settings.concurrency
    assert got.compression_level <= settings.compression_level
    assert got.paused >= settings.paused
    hotter = throttle(settings, min(CRITICAL, level + 1))
    assert hotter.concurrency <= got.concurrency
    assert hotter.compression_level <= got.compression_level


def test_the_step_works_on_its_own_small_types() -> None:
    limits = ThermalLimits(soft_limit_c=60.0, hard_limit_c=70.0)
    hot = step(ThermalState(), Reading(71.0), limits, T0)
    assert hot.state == ThermalState(CRITICAL, None)
    assert "hard limit" in hot.why
    assert step(hot.state, None, limits, T0).level == CRITICAL  # no reading: nothing changes


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="below"):
        ThermalLimits(soft_limit_c=80.0, hard_limit_c=70.0)
    with pytest.raises(ValueError, match="≥ 0"):
        ThermalLimits(cool_hold_s=-1)
