"""The edgefleet wire protocol (DESIGN §2): topics, messages and their codec, shared by every part.

Names are loaded on first use (PEP 562), so ``fleet_protocol.vocabulary``, ``fleet_protocol.topics``,
``fleet_protocol.assignment`` and ``fleet_protocol.windows`` can be imported without loading pydantic (the upload
engine needs only those).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet_protocol.assignment import MIN_PART_SIZE, AssignmentSettings
    from fleet_protocol.codec import decode, decode_controller_state, encode
    from fleet_protocol.errors import PayloadError, ProtocolError, TopicError
    from fleet_protocol.messages import (
        AGENT_MESSAGES,
        MAX_PAYLOAD_BYTES,
        SCHEMA_VERSION,
        Assignment,
        Birth,
        ControllerState,
        Event,
        Message,
        State,
        Telemetry,
    )
    from fleet_protocol.topics import (
        AGENT_PUBLISHES,
        CONTROLLER_STATE_TOPIC,
        NAMESPACE,
        AgentChannel,
        AgentTopic,
        agent_filter,
        agent_topic,
        validate_agent_id,
    )
    from fleet_protocol.vocabulary import AgentStatus, EventKind
    from fleet_protocol.windows import is_valid_window

_EXPORTS: dict[str, str] = {
    "AGENT_MESSAGES": "fleet_protocol.messages",
    "AGENT_PUBLISHES": "fleet_protocol.topics",
    "AgentChannel": "fleet_protocol.topics",
    "AgentStatus": "fleet_protocol.vocabulary",
    "AgentTopic": "fleet_protocol.topics",
    "Assignment": "fleet_protocol.messages",
    "AssignmentSettings": "fleet_protocol.assignment",
    "Birth": "fleet_protocol.messages",
    "CONTROLLER_STATE_TOPIC": "fleet_protocol.topics",
    "ControllerState": "fleet_protocol.messages",
    "Event": "fleet_protocol.messages",
    "EventKind": "fleet_protocol.vocabulary",
    "MAX_PAYLOAD_BYTES": "fleet_protocol.messages",
    "MIN_PART_SIZE": "fleet_protocol.assignment",
    "Message": "fleet_protocol.messages",
    "NAMESPACE": "fleet_protocol.topics",
    "PayloadError": "fleet_protocol.errors",
    "ProtocolError": "fleet_protocol.errors",
    "SCHEMA_VERSION": "fleet_protocol.messages",
    "State": "fleet_protocol.messages",
    "Telemetry": "fleet_protocol.messages",
    "TopicError": "fleet_protocol.errors",
    "agent_filter": "fleet_protocol.topics",
    "agent_topic": "fleet_protocol.topics",
    "decode": "fleet_protocol.codec",
    "decode_controller_state": "fleet_protocol.codec",
    "encode": "fleet_protocol.codec",
    "is_valid_window": "fleet_protocol.windows",
    "validate_agent_id": "fleet_protocol.topics",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AGENT_MESSAGES",
    "AGENT_PUBLISHES",
    "CONTROLLER_STATE_TOPIC",
    "MAX_PAYLOAD_BYTES",
    "MIN_PART_SIZE",
    "NAMESPACE",
    "SCHEMA_VERSION",
    "AgentChannel",
    "AgentStatus",
    "AgentTopic",
    "Assignment",
    "AssignmentSettings",
    "Birth",
    "ControllerState",
    "Event",
    "EventKind",
    "Message",
    "PayloadError",
    "ProtocolError",
    "State",
    "Telemetry",
    "TopicError",
    "agent_filter",
    "agent_topic",
    "decode",
    "decode_controller_state",
    "encode",
    "is_valid_window",
    "validate_agent_id",
]
