"""Thermal levels with hysteresis: escalate at once, step down only after holding cool for a while.

Rules (docs/design.md §5)
    level 0  normal      below the soft limit
    level 1  warm        ≥ soft limit: lower FLAC compression (cheaper CPU)
    level 2  hot         ≥ soft + ⅓ of the soft→hard span: compression 0 and half the parallel uploads
    level 3  very hot    ≥ soft + ⅔ of the span: upload raw (-1) and a quarter of the parallel uploads
    level 4  critical    ≥ hard limit, or firmware reports under-voltage / capping / throttling now: paused

A higher level applies at once. A lower one applies only when the temperature, read ``cool_margin_c``
higher than it is, still maps to that lower level, and has done so for ``cool_hold_s`` (the timer
start is ``PolicyState.cool_since``). So going back to full speed needs soft − margin for the hold
time, and a reading that wobbles around any threshold cannot flap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.policy.inputs import PolicyConfig, PolicyState, TelemetryView
from fleet_protocol.vocabulary import ThrottleBit, throttle_words

NORMAL, WARM, HOT, VERY_HOT, CRITICAL = range(5)
LEVEL_NAMES = ("normal", "warm", "hot", "very hot", "critical")

#: firmware bits (``Telemetry.throttled``) that mean "happening now" and pause the agent
PAUSE_BITS = ThrottleBit.UNDER_VOLTAGE | ThrottleBit.FREQUENCY_CAPPED | ThrottleBit.THROTTLED


def thresholds(config: PolicyConfig) -> tuple[float, float, float, float]:
    """Lower bound of levels 1..4 in °C."""
    soft, hard = config.soft_limit_c, config.hard_limit_c
    span = hard - soft
    return soft, soft + span / 3, soft + 2 * span / 3, hard


def firmware_words(throttled: int) -> list[str]:
    """The pausing conditions the firmware reports now."""
    return throttle_words(throttled & PAUSE_BITS)


def level_for(temperature_c: float | None, throttled: int, config: PolicyConfig, *, shift: float = 0.0) -> int:
    """The level a reading asks for; ``shift`` adds degrees (the cooling margin) before comparing."""
    if throttled & PAUSE_BITS:
        return CRITICAL
    level = WARM if throttled & ThrottleBit.SOFT_TEMP_LIMIT else NORMAL
    if temperature_c is None:
        return level
    reading = temperature_c + shift
    for index, bound in enumerate(thresholds(config), start=1):
        if reading >= bound:
            level = max(level, index)
    return level


@dataclass(frozen=True)
class ThermalStep:
    level: int
    state: PolicyState
    why: str
    quiet: bool = False  # normal and not just back from a higher level: nothing worth saying


def _fmt(value: float) -> str:
    return f"{value:.1f} °C"


def _cause(telemetry: TelemetryView, level: int, config: PolicyConfig) -> str:
    words = firmware_words(telemetry.throttled)
    if level == CRITICAL and words:
        return f"firmware reports {', '.join(words)}"
    temp = telemetry.temperature_c
    if temp is None:
        return "firmware soft temperature limit" if level else "no temperature reported"
    if level == NORMAL:
        return f"{_fmt(temp)} < {_fmt(config.soft_limit_c)} soft limit"
    bound = thresholds(config)[level - 1]
    if level == CRITICAL:
        return f"{_fmt(temp)} ≥ {_fmt(config.hard_limit_c)} hard limit"
    if temp < config.soft_limit_c:
        return f"firmware soft temperature limit at {_fmt(temp)}"
    if level == WARM:
        return f"{_fmt(temp)} ≥ {_fmt(config.soft_limit_c)} soft limit"
    return f"{_fmt(temp)} ≥ {_fmt(bound)} ({_fmt(config.soft_limit_c)} soft limit)"


def step(state: PolicyState, telemetry: TelemetryView | None, config: PolicyConfig, now: datetime) -> ThermalStep:
    """Next thermal level of one agent; pure."""
    if telemetry is None:
        return ThermalStep(state.thermal_level, _keep_timer(state, None), "no telemetry yet")
    wanted = level_for(telemetry.temperature_c, telemetry.throttled, config)
    current = state.thermal_level
    if wanted >= current:
        cause = _cause(telemetry, wanted, config)
        return ThermalStep(wanted, _keep_timer(state, None, wanted), cause, quiet=wanted == current == NORMAL)
    cooled = level_for(telemetry.temperature_c, telemetry.throttled, config, shift=config.cool_margin_c)
    if cooled >= current:
        margin = f"within {config.cool_margin_c:g} °C margin"
        why = f"{_cause(telemetry, wanted, config)} but {margin}: holding {LEVEL_NAMES[current]}"
        return ThermalStep(current, _keep_timer(state, None), why)
    since = state.cool_since or now
    held = (now - since).total_seconds()
    if held >= config.cool_hold_s:
        why = f"cool for {held:.0f} s ≥ {config.cool_hold_s:g} s: {LEVEL_NAMES[current]} → {LEVEL_NAMES[cooled]}"
        if cooled == NORMAL and telemetry.temperature_c is not None:
            why = f"{_fmt(telemetry.temperature_c)} < {_fmt(config.soft_limit_c - config.cool_margin_c)} " + why
        return ThermalStep(cooled, _keep_timer(state, None, cooled), why)
    why = (
        f"cooling ({_cause(telemetry, wanted, config)}), {held:.0f} s of {config.cool_hold_s:g} s held: "
        f"staying {LEVEL_NAMES[current]}"
    )
    return ThermalStep(current, _keep_timer(state, since), why)


def _keep_timer(state: PolicyState, cool_since: datetime | None, level: int | None = None) -> PolicyState:
    return PolicyState(
        thermal_level=state.thermal_level if level is None else level,
        cool_since=cool_since,
        window_widened=state.window_widened,
    )
