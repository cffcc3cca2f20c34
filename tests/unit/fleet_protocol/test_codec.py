"""Round trip of every message and rejection of malformed ones."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_protocol.codec import decode, decode_controller_state, encode
from fleet_protocol.errors import PayloadError, ProtocolError, TopicError
from fleet_protocol.messages import (
    MAX_PAYLOAD_BYTES,
    Assignment,
    Birth,
    ControllerState,
    Event,
    Message,
    State,
    Telemetry,
)
from fleet_protocol.numbers import MAX_BYTES, MAX_COUNT
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, AgentTopic, agent_filter, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SAMPLES: list[Message] = [
    Birth(
        agent_id="pi-1",
        seq=0,
        sent_at=NOW,
        model="Raspberry Pi 4 Model B",
        cores=4,
        ram_bytes=4 << 30,
        software_version="0.1.0",
        flac_encode_bps=21e6,
        bucket="recordings",
        prefix="field",
    ),
    State(agent_id="pi-1", seq=1, sent_at=NOW, state=AgentStatus.OFFLINE),
    Telemetry(
        agent_id="pi-1",
        seq=2,
        sent_at=NOW,
        temperature_c=71.5,
        throttled=0x50005,
        cpu_percent=87.5,
        mem_available_bytes=1 << 30,
        disk_free_bytes=9 << 30,
        backlog_files=3,
        backlog_bytes=3 << 30,
        active_uploads=2,
        throughput_bps=1.9e6,
        assignment_version=7,
    ),
    Event(
        agent_id="pi-1",
        seq=3,
        sent_at=NOW,
        kind=EventKind.UPLOAD_COMPLETED,
        file="r.wav",
        key="field/pi-1/2026/11/30/r.flac",
        original_bytes=10,
        stored_bytes=6,
        original_sha256="a" * 64,
        stored_as="flac",
        duration_s=1.5,
    ),
    Assignment(
        agent_id="pi-1",
        seq=4,
        sent_at=NOW,
        version=3,
        concurrency=2,
        part_size=16 << 20,
        windows=["22:00-06:00"],
        bandwidth_bps=1_000_000,
        compression_level=3,
        reason="78.4 °C ≥ 70 °C soft limit: concurrency 4 → 2",
    ),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    topic = agent_topic(message.agent_id, message.channel)
    assert decode(topic, encode(message)) == message


def test_controller_state_round_trip() -> None:
    state = ControllerState(controller_id="ctl-1", seq=1, sent_at=NOW, state=AgentStatus.ONLINE)
    assert decode_controller_state(CONTROLLER_STATE_TOPIC, encode(state)) == state


def _payload(message: Message, **changes: object) -> bytes:
    data = json.loads(encode(message))
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


_DELETE = object()
TELEMETRY_TOPIC = "edgefleet/v1/agents/pi-1/telemetry"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (_payload(SAMPLES[2], v=2), "version"),
        (_payload(SAMPLES[2], v=_DELETE), "version"),
        (_payload(SAMPLES[2], temperature_c="hot"), "temperature_c"),
        (_payload(SAMPLES[2], backlog_files=-1), "backlog_files"),
        (_payload(SAMPLES[2], seq=_DELETE), "seq"),
        (_payload(SAMPLES[2], agent_id="pi-2"), "does not match"),
        (_payload(SAMPLES[2], agent_id="pi/+"), "agent_id"),
        (_payload(SAMPLES[2], sent_at="2026-11-30T12:00:00"), "time zone"),
        (b'{"v": 1, "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "exceeds"),
    ],
)
def test_malformed_payloads_are_rejected(payload: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError, match=fragment):
        decode(TELEMETRY_TOPIC, payload)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"part_size": 1024}, "part_size"),
        ({"compression_level": 9}, "compression_level"),
        ({"windows": ["25:00-06:00"]}, "windows"),
        ({"concurrency": _DELETE}, "concurrency"),
    ],
)
def test_invalid_assignments_are_rejected(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(PayloadError, match=fragment):
        decode("edgefleet/v1/agents/pi-1/assignment", _payload(SAMPLES[4], **changes))


def test_unknown_fields_are_ignored() -> None:
    message = decode(TELEMETRY_TOPIC, _payload(SAMPLES[2], future_field={"x": 1}))
    assert message == SAMPLES[2]


@pytest.mark.parametrize(
    "topic",
    [
        "edgefleet/v2/agents/pi-1/telemetry",
        "edgefleet/v1/agents/pi-1/unknown",
        "edgefleet/v1/agents/+/telemetry",
        "edgefleet/v1/agents/#/telemetry",
        "edgefleet/v1/agents/pi-1/telemetry/extra",
        "other/v1/agents/pi-1/telemetry",
    ],
)
def test_bad_topics_are_rejected(topic: str) -> None:
    with pytest.raises(TopicError):
        decode(topic, encode(SAMPLES[2]))


def test_topic_helpers() -> None:
    assert agent_topic("pi-1", AgentChannel.BIRTH) == "edgefleet/v1/agents/pi-1/birth"
    assert AgentTopic.parse("edgefleet/v1/agents/pi-1/events") == AgentTopic("pi-1", AgentChannel.EVENTS)
    assert agent_filter("telemetry") == "edgefleet/v1/agents/+/telemetry"
    assert agent_filter("telemetry", shared_group="ctl") == "$share/ctl/edgefleet/v1/agents/+/telemetry"
    with pytest.raises(TopicError):
        agent_topic("bad id", AgentChannel.BIRTH)


def test_controller_state_topic_is_checked() -> None:
    state = ControllerState(controller_id="c", state=AgentStatus.ONLINE)
    with pytest.raises(PayloadError):
        decode_controller_state("edgefleet/v1/agents/pi-1/state", encode(state))


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_the_decoder(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(TELEMETRY_TOPIC, payload)


@given(
    temperature=st.floats(min_value=-60, max_value=150, allow_nan=False),
    backlog=st.integers(min_value=0, max_value=MAX_BYTES),
    seq=st.integers(min_value=0, max_value=MAX_COUNT),
)
def test_telemetry_round_trip_property(temperature: float, backlog: int, seq: int) -> None:
    message = Telemetry(agent_id="pi-9", seq=seq, sent_at=NOW, temperature_c=temperature, backlog_bytes=backlog)
    assert decode("edgefleet/v1/agents/pi-9/telemetry", encode(message)) == message
