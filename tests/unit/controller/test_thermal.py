"""Thermal levels and hysteresis (controller.policy.thermal): tables and properties, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policy import PolicyConfig, PolicyState, TelemetryView
from controller.policy.thermal import step
from fleet_plan.thermal import CRITICAL, HOT, NORMAL, VERY_HOT, WARM, level_for

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CFG = PolicyConfig()


def reading(temp: float | None, throttled: int = 0, at: datetime = T0) -> TelemetryView:
    return TelemetryView(at=at, temperature_c=temp, throttled=throttled)


@pytest.mark.parametrize(
    ("temp", "throttled", "level"),
    [
        (None, 0, NORMAL),
        (40.0, 0, NORMAL),
        (69.9, 0, NORMAL),
        (70.0, 0, WARM),
        (73.3, 0, WARM),
        (73.4, 0, HOT),
        (76.7, 0, VERY_HOT),
        (79.9, 0, VERY_HOT),
        (80.0, 0, CRITICAL),
        (95.0, 0, CRITICAL),
        (40.0, 0x1, CRITICAL),  # under-voltage now
        (40.0, 0x4, CRITICAL),  # throttled now
        (40.0, 0x2, CRITICAL),  # frequency capped now
        (40.0, 0x8, WARM),  # soft temperature limit active
        (40.0, 0x50000, NORMAL),  # only "has happened" bits
        (None, 0x4, CRITICAL),
    ],
)
def test_level_for_reading(temp: float | None, throttled: int, level: int) -> None:
    assert level_for(temp, throttled, CFG) == level


def test_heats_up_at_once() -> None:
    result = step(PolicyState(), reading(81.0), CFG, T0)
    assert result.level == CRITICAL
    assert "81.0 °C ≥ 80.0 °C hard limit" in result.why


def test_back_to_full_only_below_soft_minus_margin_held_for_hold_time() -> None:
    state = PolicyState(thermal_level=WARM)
    # 66 °C: below the soft limit but inside the 5 °C margin: held however long it lasts.
    for seconds in range(0, 600, 5):
        result = step(state, reading(66.0), CFG, T0 + timedelta(seconds=seconds))
        assert result.level == WARM
        assert result.state.cool_since is None
        state = result.state
    # 64 °C: cool enough; the timer starts and runs for 60 s before stepping down.
    start = T0 + timedelta(seconds=600)
    for seconds in range(0, 60, 5):
        result = step(state, reading(64.0), CFG, start + timedelta(seconds=seconds))
        assert result.level == WARM, seconds
        assert result.state.cool_since == start
        state = result.state
    result = step(state, reading(64.0), CFG, start + timedelta(seconds=60))
    assert result.level == NORMAL
    assert result.state.cool_since is None
    assert "64.0 °C < 65.0 °C" in result.why


def test_a_warm_reading_resets_the_cooling_timer() -> None:
    state = step(PolicyState(thermal_level=HOT), reading(60.0), CFG, T0).state
    assert state.cool_since == T0
    state = step(state, reading(69.0), CFG, T0 + timedelta(seconds=30)).state  # 69 + 5 °C maps to "hot"
    assert state.cool_since is None
    result = step(state, reading(60.0), CFG, T0 + timedelta(seconds=70))
    assert result.level == HOT  # timer restarted at 70 s
    assert result.state.cool_since == T0 + timedelta(seconds=70)


def test_hot_at_66_degrees_steps_down_to_warm_but_not_to_normal() -> None:
    state = PolicyState(thermal_level=HOT)
    for seconds in range(0, 600, 5):
        state = step(state, reading(66.0), CFG, T0 + timedelta(seconds=seconds)).state
    assert state.thermal_level == WARM


def test_steps_down_to_the_level_the_margin_allows() -> None:
    state = step(PolicyState(thermal_level=CRITICAL), reading(72.0), CFG, T0).state
    result = step(state, reading(72.0), CFG, T0 + timedelta(seconds=60))
    # 72 + 5 = 77 °C maps to "very hot": one step down, not straight to normal.
    assert result.level == VERY_HOT


def test_firmware_throttle_bits_hold_until_cleared_and_cooled() -> None:
    state = step(PolicyState(), reading(50.0, throttled=0x4), CFG, T0).state
    assert state.thermal_level == CRITICAL
    state = step(state, reading(50.0, throttled=0x4), CFG, T0 + timedelta(seconds=120)).state
    assert state.thermal_level == CRITICAL
    state = step(state, reading(50.0), CFG, T0 + timedelta(seconds=125)).state
    assert state.thermal_level == CRITICAL
    assert step(state, reading(50.0), CFG, T0 + timedelta(seconds=185)).level == NORMAL


@given(
    center=st.floats(min_value=50.0, max_value=90.0),
    wobble=st.lists(st.floats(min_value=-0.49, max_value=0.49), min_size=2, max_size=200),
    gaps=st.lists(st.integers(min_value=1, max_value=120), min_size=200, max_size=200),
)
def test_oscillating_temperature_never_flaps(center: float, wobble: list[float], gaps: list[int]) -> None:
    """Readings that stay within less than the cooling margin of each other never make the level drop."""
    amplitude = CFG.cool_margin_c * 0.99
    state, now, levels = PolicyState(), T0, []
    for fraction, gap in zip(wobble, gaps, strict=False):
        result = step(state, reading(center + fraction * amplitude), CFG, now)
        levels.append(result.level)
        state, now = result.state, now + timedelta(seconds=gap)
    assert levels == sorted(levels), levels
    assert len(set(levels)) <= 4


@given(
    temp=st.one_of(st.none(), st.floats(min_value=-60, max_value=150)),
    throttled=st.integers(min_value=0, max_value=0xF000F),
    prior=st.integers(min_value=0, max_value=4),
    cool_for=st.integers(min_value=0, max_value=3600),
)
def test_at_or_above_hard_limit_is_always_critical(
    temp: float | None, throttled: int, prior: int, cool_for: int
) -> None:
    state = PolicyState(thermal_level=prior, cool_since=T0 - timedelta(seconds=cool_for))
    result = step(state, reading(temp, throttled), CFG, T0)
    if (temp is not None and temp >= CFG.hard_limit_c) or throttled & 0x7:
        assert result.level == CRITICAL
    assert result.level >= level_for(temp, throttled, CFG)
