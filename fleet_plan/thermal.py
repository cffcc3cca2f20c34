"""Thermal levels with hysteresis: escalate at once, step down only after holding cool for a while. Pure.

One function for both sides: the controller's policy (``controller.policy.thermal``) and the agent's own local
guard (``edge_agent.service.guard``) step the same way from the same readings.

Rules (docs/design.md, "Thermal steps")
    level 0  normal      below the soft limit
    level 1  warm        ≥ soft limit: lower FLAC compression (cheaper CPU)
    level 2  hot         ≥ soft + ⅓ of the soft→hard span: compression 0 and half the parallel uploads
    level 3  very hot    ≥ soft + ⅔ of the span: upload raw (-1) and a quarter of the parallel uploads
    level 4  critical    ≥ hard limit, or firmware reports under-voltage / capping / throttling now: paused

A higher level applies at once. A lower one applies only when the temperature, read ``cool_margin_c``
higher than it is, still maps to that lower level, and has done so for ``cool_hold_s`` (the timer
start is ``ThermalState.cool_since``). So going back to full speed needs soft − margin for the hold
time, and a reading that wobbles around any threshold cannot flap.

The limits and the reading are protocols: the controller's ``PolicyConfig`` and ``TelemetryView`` fit them as
they are, and so do ``ThermalLimits`` and ``Reading`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from fleet_protocol.assignment import RAW, AssignmentSettings
from fleet_protocol.vocabulary import ThrottleBit, throttle_words

NORMAL, WARM, HOT, VERY_HOT, CRITICAL = range(5)
LEVEL_NAMES = ("normal", "warm", "hot", "very hot", "critical")

#: firmware bits (``Telemetry.throttled``) that mean "happening now" and pause the agent
PAUSE_BITS = ThrottleBit.UNDER_VOLTAGE | ThrottleBit.FREQUENCY_CAPPED | ThrottleBit.THROTTLED


class Limits(Protocol):
    @property
    def soft_limit_c(self) -> float: ...
    @property
    def hard_limit_c(self) -> float: ...
    @property
    def cool_margin_c(self) -> float: ...
    @property
    def cool_hold_s(self) -> float: ...


class Sample(Protocol):
    @property
    def temperature_c(self) -> float | None: ...
    @property
    def throttled(self) -> int: ...


@dataclass(frozen=True)
class ThermalLimits:
    """The thermal limits, with the defaults both the controller's ``[policy]`` and the agent's guard use."""

    soft_limit_c: float = 70.0
    hard_limit_c: float = 80.0
    cool_margin_c: float = 5.0
    cool_hold_s: float = 60.0

    def __post_init__(self) -> None:
        check_limits(self)


def check_limits(limits: Limits) -> None:
    """``ValueError`` unless soft < hard and the margin and hold time are ≥ 0."""
    if not limits.soft_limit_c < limits.hard_limit_c:
        raise ValueError(f"soft_limit_c ({limits.soft_limit_c}) must be below hard_limit_c ({limits.hard_limit_c})")
    if limits.cool_margin_c < 0 or limits.cool_hold_s < 0:
        raise ValueError("cool_margin_c and cool_hold_s must be ≥ 0")


DEFAULT_LIMITS = ThermalLimits()


@dataclass(frozen=True)
class Reading:
    temperature_c: float | None = None
    throttled: int = 0


@dataclass(frozen=True)
class ThermalState:
    """The hysteresis memory: the level in force and since when the readings have been cool enough to step down."""

    level: int = NORMAL
    cool_since: datetime | None = None


@dataclass(frozen=True)
class ThermalStep:
    level: int
    cool_since: datetime | None
    why: str
    quiet: bool = False  # normal and not just back from a higher level: nothing worth saying

    @property
    def state(self) -> ThermalState:
        return ThermalState(self.level, self.cool_since)


def thresholds(limits: Limits) -> tuple[float, float, float, float]:
    """Lower bound of levels 1..4 in °C."""
    soft, hard = limits.soft_limit_c, limits.hard_limit_c
    span = hard - soft
    return soft, soft + span / 3, soft + 2 * span / 3, hard


def firmware_words(throttled: int) -> list[str]:
    """The pausing conditions the firmware reports now."""
    return throttle_words(throttled & PAUSE_BITS)


def level_for(temperature_c: float | None, throttled: int, limits: Limits, *, shift: float = 0.0) -> int:
    """The level a reading asks for; ``shift`` adds degrees (the cooling margin) before comparing."""
    if throttled & PAUSE_BITS:
        return CRITICAL
    level = WARM if throttled & ThrottleBit.SOFT_TEMP_LIMIT else NORMAL
    if temperature_c is None:
        return level
    reading = temperature_c + shift
    for index, bound in enumerate(thresholds(limits), start=1):
        if reading >= bound:
            level = max(level, index)
    return level


def _fmt(value: float) -> str:
    return f"{value:.1f} °C"


def _cause(sample: Sample, level: int, limits: Limits) -> str:
    words = firmware_words(sample.throttled)
    if level == CRITICAL and words:
        return f"firmware reports {', '.join(words)}"
    temp = sample.temperature_c
    if temp is None:
        return "firmware soft temperature limit" if level else "no temperature reported"
    if level == NORMAL:
        return f"{_fmt(temp)} < {_fmt(limits.soft_limit_c)} soft limit"
    bound = thresholds(limits)[level - 1]
    if level == CRITICAL:
        return f"{_fmt(temp)} ≥ {_fmt(limits.hard_limit_c)} hard limit"
    if temp < limits.soft_limit_c:
        return f"firmware soft temperature limit at {_fmt(temp)}"
    if level == WARM:
        return f"{_fmt(temp)} ≥ {_fmt(limits.soft_limit_c)} soft limit"
    return f"{_fmt(temp)} ≥ {_fmt(bound)} ({_fmt(limits.soft_limit_c)} soft limit)"


def step(state: ThermalState, sample: Sample | None, limits: Limits, now: datetime) -> ThermalStep:
    """Next thermal level from the one in force and a reading (``None``: none yet, nothing changes)."""
    current = state.level
    if sample is None:
        return ThermalStep(current, None, "no telemetry yet")
    wanted = level_for(sample.temperature_c, sample.throttled, limits)
    if wanted >= current:
        return ThermalStep(wanted, None, _cause(sample, wanted, limits), quiet=wanted == current == NORMAL)
    cooled = level_for(sample.temperature_c, sample.throttled, limits, shift=limits.cool_margin_c)
    if cooled >= current:
        margin = f"within {limits.cool_margin_c:g} °C margin"
        why = f"{_cause(sample, wanted, limits)} but {margin}: holding {LEVEL_NAMES[current]}"
        return ThermalStep(current, None, why)
    since = state.cool_since or now
    held = (now - since).total_seconds()
    if held >= limits.cool_hold_s:
        why = f"cool for {held:.0f} s ≥ {limits.cool_hold_s:g} s: {LEVEL_NAMES[current]} → {LEVEL_NAMES[cooled]}"
        if cooled == NORMAL and sample.temperature_c is not None:
            why = f"{_fmt(sample.temperature_c)} < {_fmt(limits.soft_limit_c - limits.cool_margin_c)} " + why
        return ThermalStep(cooled, None, why)
    why = (
        f"cooling ({_cause(sample, wanted, limits)}), {held:.0f} s of {limits.cool_hold_s:g} s held: "
        f"staying {LEVEL_NAMES[current]}"
    )
    return ThermalStep(current, since, why)


# -- what a level does to the settings -----------------------------------------------------------------------
def scaled_concurrency(full: int, level: int) -> int:
    """Fewer parallel uploads as the agent heats: full, full, ½, ¼ (at least 1)."""
    divisor = {0: 1, 1: 1, 2: 2}.get(level, 4)
    return max(1, full // divisor)


def compression_for(level: int, default: int) -> int:
    """Cheaper compression first: ``default``, ≤1, 0, then raw (-1)."""
    return (default, min(default, 1), 0)[level] if level <= HOT else RAW


def throttle(settings: AssignmentSettings, level: int) -> AssignmentSettings:
    """``settings`` (what a cool agent would run with) as the thermal ``level`` allows: cheaper compression,
    fewer parallel uploads, raw, and paused at critical. Normal changes nothing; never raises anything."""
    if level <= NORMAL:
        return settings
    base = settings.compression_level
    compression = base if base == RAW else min(base, compression_for(level, base))
    throttled = replace(
        settings,
        concurrency=min(settings.concurrency, scaled_concurrency(settings.concurrency, level)),
        compression_level=compression,
    )
    return replace(throttled, paused=True) if level >= CRITICAL else throttled
