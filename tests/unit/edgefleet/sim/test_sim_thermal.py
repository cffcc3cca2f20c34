import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgefleet.sim.profiles import PROFILES, busy_cores
from edgefleet.sim.thermal import ThermalParams, ThermalState, step, throttled_mask
from fleet_protocol.vocabulary import STICKY_SHIFT, ThrottleBit

ARM_FREQ_CAPPED, THROTTLED, SOFT_TEMP_LIMIT = (
    ThrottleBit.FREQUENCY_CAPPED,
    ThrottleBit.THROTTLED,
    ThrottleBit.SOFT_TEMP_LIMIT,
)

params_st = st.builds(
    ThermalParams,
    ambient_c=st.floats(-20, 50),
    idle_rise_c=st.floats(0, 15),
    rise_per_core_c=st.floats(0, 30),
    time_constant_s=st.floats(5, 600),
)
loads = st.lists(st.tuples(st.floats(0, 4), st.floats(0, 120)), min_size=1, max_size=40)


@given(params=params_st, start=st.floats(-20, 120), steps=loads)
def test_temperature_stays_between_the_start_idle_and_the_ceiling(params, start, steps):
    state = ThermalState(start)
    low = min(start, params.idle_c) - 1e-9
    high = max(start, params.ceiling_c(4)) + 1e-9
    for busy, dt in steps:
        state = step(state, params, busy, dt)
        assert low <= state.temperature_c <= high


@given(params=params_st, start=st.floats(-20, 120), dts=st.lists(st.floats(0.1, 300), min_size=1, max_size=30))
def test_idle_it_moves_monotonically_toward_ambient_plus_idle_rise(params, start, dts):
    state = ThermalState(start)
    for dt in dts:
        new = step(state, params, 0.0, dt)
        assert abs(new.temperature_c - params.idle_c) <= abs(state.temperature_c - params.idle_c) + 1e-9
        assert (new.temperature_c - params.idle_c) * (start - params.idle_c) >= -1e-9  # never overshoots
        state = new


@given(params=params_st, start=st.floats(-20, 120), busy=st.floats(0, 4), more=st.floats(0, 4), dt=st.floats(0, 600))
def test_more_load_is_never_cooler(params, start, busy, more, dt):
    state = ThermalState(start)
    assert step(state, params, busy + more, dt).temperature_c >= step(state, params, busy, dt).temperature_c - 1e-9


def test_step_size_does_not_matter_for_constant_load():
    params = ThermalParams()
    one = step(ThermalState(40.0), params, 2.0, 60.0)
    many = ThermalState(40.0)
    for _ in range(60):
        many = step(many, params, 2.0, 1.0)
    assert math.isclose(one.temperature_c, many.temperature_c, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("temperature", "current"),
    [
        (79.9, 0),
        (80.0, SOFT_TEMP_LIMIT | THROTTLED),
        (84.0, SOFT_TEMP_LIMIT | THROTTLED),
        (85.0, SOFT_TEMP_LIMIT | THROTTLED | ARM_FREQ_CAPPED),
    ],
)
def test_firmware_bits_above_80_c_and_sticky_bits_stay(temperature, current):
    params = ThermalParams(time_constant_s=1e-3)
    state = step(ThermalState(temperature), params, 0.0, 0.0)  # dt 0: unchanged
    assert throttled_mask(state, params) == current
    hot = step(ThermalState(temperature), ThermalParams(idle_rise_c=0, ambient_c=temperature), 0.0, 1.0)
    assert throttled_mask(hot, params) == current | (current << STICKY_SHIFT)
    cooled = step(hot, params, 0.0, 10.0)  # back at 33 °C: current bits clear, "has occurred" bits remain
    assert throttled_mask(cooled, params) == current << STICKY_SHIFT


def test_hot_enclosure_reaches_the_firmware_limit_where_a_normal_one_does_not():
    pi4 = PROFILES["pi4-4g"]
    for params, expect_throttled in ((pi4.thermal, False), (pi4.thermal.hot_enclosure(), True)):
        state = ThermalState(params.idle_c)
        for _ in range(900):
            state = step(state, params, busy_cores(pi4, 8, 8), 1.0)
        assert bool(throttled_mask(state, params) & THROTTLED << STICKY_SHIFT) == expect_throttled


def test_throttling_by_the_controller_cools_a_hot_agent():
    """What the controller does (compression down, then fewer uploads) lowers the steady temperature."""
    pi4 = PROFILES["pi4-4g"]
    params = pi4.thermal.hot_enclosure()

    def settle(streams: int, level: int) -> float:
        state = ThermalState(params.idle_c)
        for _ in range(1200):
            state = step(state, params, busy_cores(pi4, streams, level), 1.0)
        return state.temperature_c

    full, cheaper, fewer, paused = settle(8, 5), settle(8, 1), settle(4, 1), settle(0, 5)
    assert full > cheaper > fewer > paused
    assert fewer < 70.0 < full


@pytest.mark.parametrize("key", list(PROFILES))
def test_busy_cores_is_bounded_and_grows_with_work(key):
    profile = PROFILES[key]
    assert busy_cores(profile, 0, 8) == busy_cores(profile, 0, 0)
    assert busy_cores(profile, 64, 8) == profile.cores
    assert busy_cores(profile, 2, -1) < busy_cores(profile, 2, 0) < busy_cores(profile, 2, 8)
    assert busy_cores(profile, 1, 5) < busy_cores(profile, 2, 5)
