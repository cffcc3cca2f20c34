"""What the policy reads is made sane, and what it hands out fits the ``Assignment`` message; pure.

``assign`` must be total: whatever the store hands it (rows written before the protocol bounded its numbers, a
corrupt policy state, an operator's odd override, a config with many windows), every decision it returns becomes
a valid ``Assignment`` (the service builds one from it and must never fail to). The bounds themselves live in
``fleet_protocol.messages``; this module only applies them.
"""

from __future__ import annotations

import math
from dataclasses import replace

from controller.policy.inputs import AgentView, OverrideView, PolicyState, Settings, TelemetryView
from fleet_protocol.bounds import clean_text
from fleet_protocol.messages import (
    MAX_BYTES,
    MAX_CONCURRENCY,
    MAX_CORES,
    MAX_INT32,
    MAX_PART_SIZE,
    MAX_RATE_BPS,
    MAX_REASON_CHARS,
    MAX_SECONDS,
    MAX_WINDOWS,
    MIN_PART_SIZE,
    is_valid_window,
)

#: thermal levels the policy knows (``thermal.NORMAL`` .. ``thermal.CRITICAL``)
MAX_LEVEL = 4


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def finite(value: float, high: float, low: float = 0.0) -> float:
    """``value`` inside [low, high]; NaN counts as ``low``."""
    if math.isnan(value):
        return low
    return max(low, min(high, value))


def sane_telemetry(t: TelemetryView) -> TelemetryView:
    temperature = t.temperature_c
    if temperature is not None and math.isnan(temperature):
        temperature = None
    return replace(
        t,
        temperature_c=temperature,
        throttled=clamp(t.throttled, 0, MAX_INT32),
        cpu_percent=finite(t.cpu_percent, 1e6),
        backlog_files=clamp(t.backlog_files, 0, MAX_INT32),
        backlog_bytes=clamp(t.backlog_bytes, 0, MAX_BYTES),
        backlog_oldest_age_s=finite(t.backlog_oldest_age_s, MAX_SECONDS),
        active_uploads=clamp(t.active_uploads, 0, MAX_INT32),
        throughput_bps=finite(t.throughput_bps, MAX_RATE_BPS),
    )


def sane_agent(agent: AgentView) -> AgentView:
    """The agent's numbers inside the protocol's bounds and its policy state inside the known levels."""
    state = agent.state
    if not 0 <= state.thermal_level <= MAX_LEVEL:
        state = PolicyState(clamp(state.thermal_level, 0, MAX_LEVEL), state.cool_since, state.window_widened)
    return replace(
        agent,
        cores=clamp(agent.cores, 1, MAX_CORES),
        ram_bytes=clamp(agent.ram_bytes, 0, MAX_BYTES),
        telemetry=None if agent.telemetry is None else sane_telemetry(agent.telemetry),
        state=state,
        previous=None if agent.previous is None else fit_settings(agent.previous),
    )


def sane_override(override: OverrideView | None) -> OverrideView | None:
    if override is None:
        return None
    cap, bandwidth = override.concurrency_cap, override.bandwidth_cap_bps
    return replace(
        override,
        concurrency_cap=None if cap is None else clamp(cap, 0, MAX_CONCURRENCY),
        bandwidth_cap_bps=None if bandwidth is None else clamp(bandwidth, 0, MAX_BYTES),
        windows=None if override.windows is None else fit_windows(override.windows),
    )


def fit_windows(windows: tuple[str, ...]) -> tuple[str, ...]:
    """Valid windows only, each once, at most ``MAX_WINDOWS`` (the first ones)."""
    kept = [w for w in dict.fromkeys(windows) if isinstance(w, str) and is_valid_window(w)]
    return tuple(kept[:MAX_WINDOWS])


def fit_settings(settings: Settings) -> Settings:
    """Every field inside the ``Assignment`` message's bounds; idempotent."""
    return replace(
        settings,
        concurrency=clamp(settings.concurrency, 0, MAX_CONCURRENCY),
        part_size=clamp(settings.part_size, MIN_PART_SIZE, MAX_PART_SIZE),
        windows=fit_windows(settings.windows),
        bandwidth_bps=clamp(settings.bandwidth_bps, 0, MAX_BYTES),
        compression_level=clamp(settings.compression_level, -1, 8),
    )


def fit_reason(reason: str) -> str:
    """Valid text (an operator's name or a site could bring NUL) of at most ``MAX_REASON_CHARS`` characters."""
    reason = clean_text(reason)
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"
