"""The controller's pure policy (docs/design.md §5): ``assign(snapshot, config, now)``; no I/O, no clock."""

from controller.policy.assign import assign, is_live
from controller.policy.inputs import (
    AgentView,
    Decision,
    FleetView,
    OverrideView,
    PolicyConfig,
    PolicyState,
    TelemetryView,
)

__all__ = [
    "AgentView",
    "Decision",
    "FleetView",
    "OverrideView",
    "PolicyConfig",
    "PolicyState",
    "TelemetryView",
    "assign",
    "is_live",
]
