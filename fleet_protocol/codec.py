"""Bytes ↔ messages. ``decode`` is the only way a received payload becomes a message."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from fleet_protocol.errors import PayloadError
from fleet_protocol.messages import (
    AGENT_MESSAGES,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    ControllerState,
    Message,
    QueueReply,
    QueueRequest,
)
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentTopic


def encode(message: Message | ControllerState | QueueRequest | QueueReply) -> bytes:
    data = message.model_dump_json().encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return data


def _load_json(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:  # also an integer of more than 4,300 digits
        raise PayloadError(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("payload is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(data).__name__}")
    version = data.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # not true or 1.0 either: the number 1
        raise PayloadError(f"unsupported schema version {version!r} (expected {SCHEMA_VERSION})")
    return data


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])


def decode(topic: str, payload: bytes) -> Message:
    """Parse an agent topic's payload; raise ``ProtocolError`` on anything invalid."""
    parsed = AgentTopic.parse(topic)
    data = _load_json(payload)
    model = AGENT_MESSAGES[parsed.channel]
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(f"invalid {parsed.channel.value} message: {_short(exc)}") from None
    if message.agent_id != parsed.agent_id:
        raise PayloadError(f"agent_id {message.agent_id!r} does not match topic agent {parsed.agent_id!r}")
    return message


def decode_controller_state(topic: str, payload: bytes) -> ControllerState:
    if topic != CONTROLLER_STATE_TOPIC:
        raise PayloadError(f"not the controller state topic: {topic!r}")
    try:
        return ControllerState.model_validate(_load_json(payload))
    except ValidationError as exc:
        raise PayloadError(f"invalid controller state: {_short(exc)}") from None


def decode_queue_request(payload: bytes) -> QueueRequest:
    """A queue request (its topic names the agent; the reply goes where the MQTT v5 properties say)."""
    try:
        return QueueRequest.model_validate(_load_json(payload))
    except ValidationError as exc:
        raise PayloadError(f"invalid queue request: {_short(exc)}") from None


def decode_queue_reply(payload: bytes, agent_id: str) -> QueueReply:
    """A queue reply, which must come from ``agent_id`` (the agent its reply topic names)."""
    try:
        reply = QueueReply.model_validate(_load_json(payload))
    except ValidationError as exc:
        raise PayloadError(f"invalid queue reply: {_short(exc)}") from None
    if reply.agent_id != agent_id:
        raise PayloadError(f"agent_id {reply.agent_id!r} does not match the reply topic's agent {agent_id!r}")
    return reply
