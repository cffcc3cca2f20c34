"""Every number and string of every message is bounded; the hostile strategies' valid payloads decode, their
invalid ones are refused with ``ProtocolError``; ``fit`` brings any sender's reading inside the bounds."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fleet_protocol.bounds import clean_text, fit
from fleet_protocol.codec import decode, decode_controller_state, encode
from fleet_protocol.errors import PayloadError, ProtocolError
from fleet_protocol.messages import (
    AGENT_MESSAGES,
    MAX_PAYLOAD_BYTES,
    SENT_AT_MAX,
    SENT_AT_MIN,
    Assignment,
    Birth,
    ControllerState,
    Event,
    Message,
    Telemetry,
)
from fleet_protocol.numbers import MAX_BYTES, MAX_EXACT, MAX_INT32, MAX_VERSION
from fleet_protocol.schemas import all_models
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from tests.hostile import ANY_FLOAT, ANY_INT, dumps, extreme_data, invalid_payload, valid_payload

AGENT = "pi-7"
CHANNELS = sorted(AGENT_MESSAGES, key=lambda c: c.value)
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _walk(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    found = [(path, schema)]
    for option in schema.get("anyOf", []):
        found += _walk(option, defs, path)
    if "items" in schema:
        found += _walk(schema["items"], defs, f"{path}[]")
    return found


def _leaves() -> list[tuple[str, dict[str, Any]]]:
    leaves = []
    for name, model in sorted(all_models().items()):
        schema = model.model_json_schema()
        for field, prop in schema["properties"].items():
            leaves += _walk(prop, schema.get("$defs", {}), f"{name}.{field}")
    return leaves


@pytest.mark.parametrize(("path", "schema"), _leaves(), ids=[p for p, _ in _leaves()])
def test_every_number_string_and_list_is_bounded(path: str, schema: dict[str, Any]) -> None:
    """A field added without bounds fails here, not in production."""
    kind = schema.get("type")
    if "const" in schema or "enum" in schema:
        return
    if kind in ("integer", "number"):
        assert "minimum" in schema, path
        assert "maximum" in schema, path
        assert schema["maximum"] <= 2**63 - 1, path
    elif kind == "string" and schema.get("format") != "date-time":
        pattern = schema.get("pattern", "*")
        assert "maxLength" in schema or not any(c in pattern for c in "*+"), path  # or a pattern of bounded length
    elif kind == "string":
        assert "formatMinimum" in schema, path
        assert "formatExclusiveMaximum" in schema, path
    elif kind == "array":
        assert "maxItems" in schema, path


def _topic(model: type[Message]) -> str:
    return agent_topic(AGENT, model.channel)


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.value)
@EXAMPLES
@given(data=st.data())
def test_extreme_valid_payloads_decode_and_round_trip(channel: AgentChannel, data: st.DataObject) -> None:
    model = AGENT_MESSAGES[channel]
    payload = data.draw(valid_payload(model, agent_id=AGENT))
    message = decode(_topic(model), payload)
    assert decode(_topic(model), encode(message)) == message


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.value)
@EXAMPLES
@given(data=st.data())
def test_invalid_payloads_are_refused_with_a_protocol_error(channel: AgentChannel, data: st.DataObject) -> None:
    model = AGENT_MESSAGES[channel]
    payload = data.draw(invalid_payload(model, agent_id=AGENT))
    with pytest.raises(ProtocolError):
        decode(_topic(model), payload)


@pytest.mark.parametrize("high", [True, False], ids=["upper", "lower"])
@pytest.mark.parametrize("model", [*AGENT_MESSAGES.values(), ControllerState], ids=lambda m: m.__name__)
def test_every_field_at_its_bound_at_once_is_valid(model: type[BaseModel], high: bool) -> None:
    fixed = {"agent_id": AGENT} if model is not ControllerState else {}
    data = extreme_data(model, high, **fixed)
    message: Any = model.model_validate_json(dumps(data))
    assert json.loads(message.model_dump_json()).keys() == data.keys()
    assert len(encode(message)) <= MAX_PAYLOAD_BYTES  # the largest message still fits a payload


@EXAMPLES
@given(valid=valid_payload(ControllerState), invalid=invalid_payload(ControllerState))
def test_controller_state_bounds(valid: bytes, invalid: bytes) -> None:
    decode_controller_state(CONTROLLER_STATE_TOPIC, valid)
    with pytest.raises(ProtocolError):
        decode_controller_state(CONTROLLER_STATE_TOPIC, invalid)


TELEMETRY_TOPIC = agent_topic(AGENT, AgentChannel.TELEMETRY)
BASE = {"v": 1, "agent_id": AGENT, "seq": 1, "sent_at": "2026-06-01T12:00:00Z"}


def _telemetry(**changes: Any) -> bytes:
    return json.dumps({**BASE, **changes}).encode()


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({"backlog_bytes": MAX_BYTES}, True),
        ({"backlog_bytes": MAX_BYTES + 1}, False),
        ({"backlog_bytes": 2**63}, False),  # killed the ingest thread (OverflowError in SQLite) before bounds
        ({"backlog_files": MAX_INT32}, True),
        ({"backlog_files": MAX_INT32 + 1}, False),  # a PostgreSQL INTEGER column
        ({"throttled": 0x7FFFFFFF}, True),
        ({"throttled": 0x80000000}, False),
        ({"throughput_bps": float(MAX_EXACT)}, True),
        ({"throughput_bps": 1e308}, False),  # int(inf) in part sizing before bounds
        ({"assignment_version": MAX_EXACT}, True),
        ({"assignment_version": MAX_EXACT + 1}, False),
        ({"seq": MAX_EXACT}, True),
        ({"seq": MAX_EXACT + 1}, False),
        ({"temperature_c": 150.0}, True),
        ({"temperature_c": 150.01}, False),
        ({"cpu_percent": -0.0}, True),
        ({"backlog_oldest_age_s": 3155760000.0}, True),
        ({"backlog_oldest_age_s": 3155760001.0}, False),
        ({"sent_at": "1970-01-01T00:00:00Z"}, True),
        ({"sent_at": "1969-12-31T23:59:59.999999Z"}, False),
        ({"sent_at": "2099-12-31T23:59:59.999999Z"}, True),
        ({"sent_at": "2100-01-01T00:00:00Z"}, False),
        ({"sent_at": "2100-01-01T00:59:00+01:00"}, True),  # 2099-12-31T23:59 UTC
        ({"sent_at": "9999-12-31T23:59:59-05:00"}, False),  # year 10000 in UTC: OverflowError before bounds
        ({"sent_at": "0001-01-01T00:00:00+05:00"}, False),
    ],
)
def test_telemetry_boundaries(changes: dict[str, Any], accepted: bool) -> None:
    if accepted:
        decode(TELEMETRY_TOPIC, _telemetry(**changes))
    else:
        with pytest.raises(PayloadError, match=next(iter(changes))):
            decode(TELEMETRY_TOPIC, _telemetry(**changes))


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_json_infinity_and_nan_tokens_are_refused(token: str) -> None:
    payload = json.dumps({**BASE, "throughput_bps": 0.0}).replace("0.0", token).encode()
    with pytest.raises(PayloadError, match="throughput_bps"):
        decode(TELEMETRY_TOPIC, payload)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b'{"v": 1, "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested too deeply"),
        (b'{"v": 1, "seq": ' + b"9" * 5000 + b"}", "not JSON"),
        (_telemetry(seq=1)[:-1] + b', "seq": -1}', "seq"),
    ],
)
def test_decoder_edge_cases(payload: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError, match=fragment):
        decode(TELEMETRY_TOPIC, payload)


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Birth, "model", "x" * 257),
        (Birth, "site", "a\x00b"),
        (Birth, "cores", 1025),
        (Event, "file", "f" * 1025),
        (Event, "key", "é" * 513),  # 1026 bytes: S3's limit, and PostgreSQL's index row limit before it
        (Event, "reason", "r" * 2001),
        (Assignment, "windows", ["00:00-01:00"] * 49),
        (Assignment, "windows", ["٠٣:٠٠-٠٤:٠٠"]),  # Arabic-Indic digits: \\d took them
        (Assignment, "windows", ["03:00-04:00\n"]),
        (Assignment, "bandwidth_bps", MAX_BYTES + 1),
        (Assignment, "version", MAX_VERSION + 1),
    ],
)
def test_field_bounds(model: type[Message], field: str, value: Any) -> None:
    data = json.loads(encode(SAMPLES[model]))
    data[field] = value
    with pytest.raises(PayloadError, match=field):
        decode(_topic(model), json.dumps(data).encode())


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SAMPLES: dict[type[BaseModel], Message] = {
    Birth: Birth(
        agent_id=AGENT, seq=0, sent_at=NOW, model="Pi", cores=4, ram_bytes=1, software_version="1", flac_encode_bps=1
    ),
    Event: Event(agent_id=AGENT, seq=0, sent_at=NOW, kind="upload_started", file="a.wav"),
    Assignment: Assignment(agent_id=AGENT, seq=0, sent_at=NOW, version=1, concurrency=1, part_size=8 << 20),
}


# -- fit: a sender's measurements become valid values ----------------------------------------------------------
@given(
    temperature=st.one_of(st.none(), ANY_FLOAT),
    throughput=ANY_FLOAT,
    age=ANY_FLOAT,
    backlog=ANY_INT,
    files=ANY_INT,
    version=st.integers(min_value=0, max_value=2**64),
    when=st.datetimes(timezones=st.just(UTC)),
)
def test_fit_makes_any_reading_a_valid_telemetry(
    temperature: float | None, throughput: float, age: float, backlog: int, files: int, version: int, when: datetime
) -> None:
    values = fit(
        Telemetry,
        temperature_c=temperature,
        throughput_bps=throughput,
        backlog_oldest_age_s=age,
        backlog_bytes=backlog,
        backlog_files=files,
        assignment_version=version,
        sent_at=when,
    )
    message = Telemetry(agent_id=AGENT, seq=0, **values)
    assert decode(TELEMETRY_TOPIC, encode(message)) == message
    if temperature is not None and math.isnan(temperature):
        assert message.temperature_c is None
    if 0 <= backlog <= MAX_BYTES:
        assert message.backlog_bytes == backlog  # what is inside the bounds is kept as it is
    assert SENT_AT_MIN <= message.sent_at < SENT_AT_MAX


def test_fit_cuts_a_key_to_its_bytes() -> None:
    key = fit(Event, key="é" * 1000)["key"]
    assert (len(key), len(key.encode())) == (512, 1024)


def test_fit_keeps_exact_integer_bounds() -> None:
    assert fit(Assignment, version=2**63)["version"] == MAX_VERSION  # float(2**63 - 1) would round up to 2**63


@given(name=st.text(), raw=st.binary(min_size=1, max_size=40))
def test_clean_text_makes_any_file_name_valid(name: str, raw: bytes) -> None:
    undecodable = raw.decode("utf-8", "surrogateescape")  # how Python hands out a non-UTF-8 file name
    for text in (name, undecodable):
        event = Event(agent_id=AGENT, seq=0, kind="file_rejected", file=clean_text(text, 1024))
        assert decode(agent_topic(AGENT, AgentChannel.EVENTS), encode(event)) == event
    assert clean_text("a\udcffb.wav") == "a\\xffb.wav"


def test_sent_at_in_any_offset_is_compared_in_utc() -> None:
    late = datetime(2099, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2)))  # 2100-01-01T01:00Z
    with pytest.raises(ValueError, match="sent_at"):
        Telemetry(agent_id=AGENT, seq=0, sent_at=late)
