"""The controller's pure policy (DESIGN §5): ``assign(snapshot, config, now)``; no I/O, no clock."""

from controller.policy.assign import assign, is_live
from controller.policy.inputs import (
    AgentView,
    Decision,
    FleetSnapshot,
    OverrideView,
    PolicyConfig,
    PolicyState,
    TelemetryView,
)

__all__ = [
    "AgentView",
    "Decision",
    "FleetSnapshot",
    "OverrideView",
    "PolicyConfig",
    "PolicyState",
    "TelemetryView",
    "assign",
    "is_live",
]
