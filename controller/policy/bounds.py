"""What the policy reads is made sane; pure.

``assign`` must be total: whatever the store hands it (a corrupt policy state, an operator's odd override, a
config with many windows), every decision it returns becomes a valid ``Assignment`` (the service builds one from
it and must never fail to). Its settings are an ``AssignmentSettings``, valid by construction; the bounds live in
``fleet_protocol.numbers`` and ``fleet_protocol.assignment`` (with the one clamp of each setting); this module
only applies them.
"""

from __future__ import annotations

import math
from dataclasses import replace

from controller.policy.inputs import AgentView, OverrideView, PolicyState, TelemetryView
from fleet_protocol.assignment import BANDWIDTH, CONCURRENCY, fit_windows
from fleet_protocol.bounds import clean_text
from fleet_protocol.messages import MAX_REASON_CHARS
from fleet_protocol.numbers import MAX_BYTES, MAX_CORES, MAX_INT32, MAX_RATE_BPS, MAX_SECONDS

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
        memory_limit_bytes=clamp(agent.memory_limit_bytes, 0, MAX_BYTES),
        baseline_rss_bytes=clamp(agent.baseline_rss_bytes, 0, MAX_BYTES),
        telemetry=None if agent.telemetry is None else sane_telemetry(agent.telemetry),
        state=state,
    )


def sane_override(override: OverrideView | None) -> OverrideView | None:
    if override is None:
        return None
    cap, bandwidth = override.concurrency_cap, override.bandwidth_cap_bps
    return replace(
        override,
        concurrency_cap=None if cap is None else CONCURRENCY.fit(cap),
        bandwidth_cap_bps=None if bandwidth is None else BANDWIDTH.fit(bandwidth),
        windows=None if override.windows is None else fit_windows(override.windows),
        monthly_budget_bytes=_bytes(override.monthly_budget_bytes),
        daily_cap_bytes=_bytes(override.daily_cap_bytes),
    )


def _bytes(value: int | None) -> int | None:
    return None if value is None else clamp(value, 0, MAX_BYTES)


def fit_reason(reason: str) -> str:
    """Valid text (an operator's name or a site could bring NUL) of at most ``MAX_REASON_CHARS`` characters."""
    reason = clean_text(reason)
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"
