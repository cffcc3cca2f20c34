"""The compression step of ``assign``: the cost model (``fleet_plan.compression``) under the heat's cap. Pure.

- **What it reads**: the agent's measured encode speed and ratio per level and its encoders side by side (birth,
  refined by telemetry), the measured link rate (``throughput_bps``: the engine's acknowledged bytes over busy
  time, smoothed), the operator's bandwidth cap, and the concurrency (the engine runs at most that many files).
- **Heat wins**: a cool agent may use any level; a warm or hot one only the levels up to what the thermal step
  allows (``fleet_plan.thermal.compression_for``: ≤ 1 warm, 0 hot); very hot is raw and critical is paused, as before.
- **Sticky**: the level in force is kept while the model predicts its time within ``STICKY`` of the chosen
  plan's, either way (faster too: the model may prefer a cheaper plan that is slightly slower, and a faster
  one kept forever would undo that), so the jitter of a measurement does not publish a new assignment every tick.
- **The central transcoder**: a hot agent (not very hot: that is raw anyway) sends its files raw when the
  central side has transcoding capacity (``AgentView.transcoder_capacity`` workers alive): its CPU rests, the
  transcoder makes the same FLAC objects later. The reason says so.
- **The wire**: the assignment carries one ``compression_level``: the level of the plan's FLAC files (``RAW``
  when the plan is all raw). When the model mixes raw and FLAC files the agent makes that split itself, with the
  same model and its own fresher measurements, within the level it was given (docs/design.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from controller.policy.inputs import AgentView, PolicyConfig
from fleet_plan import thermal
from fleet_plan.compression import LEVELS, Inputs, Plan, choose
from fleet_protocol.assignment import RAW, AssignmentSettings

#: keep the level in force while its predicted time is within this fraction of the best plan's: it damps a
#: measurement's jitter, and stays below the 2 % that level 8 saves over level 5 on a thin link
STICKY = 0.015


def by_level(values: Sequence[object]) -> dict[int, float]:
    """A per-level list from the wire or the store (index = level, 0 = not measured) as the model's mapping."""
    return {
        level: float(v)
        for level, v in enumerate(values[: len(LEVELS)])
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    }


def inputs_of(agent: AgentView, files: int, bandwidth_cap: int | None) -> Inputs:
    telemetry = agent.telemetry
    return Inputs(
        encode_bps=by_level(agent.encode_bps_by_level),
        ratio=by_level(agent.compression_ratio_by_level),
        cores=agent.encode_cores if agent.encode_cores > 0 else float(agent.cores),
        link_bps=telemetry.throughput_bps if telemetry else None,
        bandwidth_cap_bps=float(bandwidth_cap or 0),
        files=files,
    )


def allowed_levels(thermal_level: int, config: PolicyConfig) -> tuple[int, ...]:
    """The FLAC levels the heat allows: all when cool, up to the thermal step's level when warm or hot."""
    if thermal_level <= thermal.NORMAL:
        return LEVELS
    cap = thermal.compression_for(thermal_level, config.default_compression_level)
    return tuple(level for level in LEVELS if level <= cap)


def _sticky(best: Plan, inputs: Inputs, levels: tuple[int, ...], previous: AssignmentSettings | None) -> Plan:
    if previous is None or previous.compression_level == best.level or not math.isfinite(best.seconds_per_byte):
        return best
    level = previous.compression_level
    if level != RAW and level not in levels:
        return best
    kept = choose(inputs, (level,) if level != RAW else ())
    near = best.seconds_per_byte / (1 + STICKY) <= kept.seconds_per_byte <= best.seconds_per_byte * (1 + STICKY)
    if kept.level == level and near:
        other = best.reason.split(":", 1)[0]
        return replace(kept, reason=f"{kept.reason} (kept: {other} is within {STICKY:.1%})")
    return best


def decide(
    agent: AgentView,
    settings: AssignmentSettings,
    thermal_level: int,
    bandwidth_cap: int | None,
    config: PolicyConfig,
) -> tuple[AssignmentSettings, str]:
    """``settings`` with the compression level the model chooses under the heat's cap, and why ("" when the heat
    alone decides: very hot is raw, critical is paused)."""
    if thermal_level >= thermal.VERY_HOT or settings.compression_level == RAW:
        return settings, ""
    if thermal_level == thermal.HOT and agent.transcoder_capacity > 0:
        workers = agent.transcoder_capacity
        why = f"compression raw: hot, the central transcoder compresses ({workers} worker{'s' * (workers != 1)})"
        return replace(settings, compression_level=RAW), why
    levels = allowed_levels(thermal_level, config)
    inputs = inputs_of(agent, max(1, settings.concurrency), bandwidth_cap)
    plan = _sticky(choose(inputs, levels, config.default_compression_level), inputs, levels, agent.previous)
    return replace(settings, compression_level=plan.level), f"compression {plan.reason}"
