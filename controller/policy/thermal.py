"""The policy's thermal step: ``fleet_plan.thermal`` (shared with the agent's local guard) on the policy's types.

The levels, their rules and the hysteresis are ``fleet_plan.thermal``'s (one function for the controller and
the agent); here the agent's ``PolicyState`` goes in and comes out with the new level and cooling timer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from controller.policy.inputs import PolicyConfig, PolicyState, TelemetryView
from fleet_plan import thermal


@dataclass(frozen=True)
class ThermalStep:
    level: int
    state: PolicyState
    why: str
    quiet: bool = False  # normal and not just back from a higher level: nothing worth saying


def step(state: PolicyState, telemetry: TelemetryView | None, config: PolicyConfig, now: datetime) -> ThermalStep:
    """Next thermal level of one agent; pure."""
    done = thermal.step(thermal.ThermalState(state.thermal_level, state.cool_since), telemetry, config, now)
    next_state = replace(state, thermal_level=done.level, cool_since=done.cool_since)
    return ThermalStep(done.level, next_state, done.why, done.quiet)
