"""The compatibility rules (docs/protocol.md, "Compatibility"): receivers ignore fields they do not know, keep
event kinds they do not know (bounded), and refuse a message version they cannot read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_protocol.codec import decode, encode
from fleet_protocol.errors import PayloadError
from fleet_protocol.messages import Event
from fleet_protocol.vocabulary import (
    EVENT_KIND_PATTERN,
    MAX_EVENT_KIND_CHARS,
    EventKind,
    event_kind_label,
    known_event_kind,
)
from tests.golden.corpus import decode_any, encoded, topic_of

SAMPLES = sorted(encoded().items())


def _decode(name: str, payload: bytes) -> object:
    return decode_any(name, payload)


def _with(payload: bytes, **changes: object) -> bytes:
    return json.dumps({**json.loads(payload), **changes}).encode()


@pytest.mark.parametrize(("name", "payload"), SAMPLES, ids=[name for name, _ in SAMPLES])
def test_every_message_ignores_fields_it_does_not_know(name: str, payload: bytes) -> None:
    newer = _with(payload, added_by_a_newer_release=[1, {"nested": True}], zz="text")
    assert _decode(name, newer) == _decode(name, payload)


@pytest.mark.parametrize(("name", "payload"), SAMPLES, ids=[name for name, _ in SAMPLES])
@pytest.mark.parametrize("version", [0, 2, 99, "1", None, True, 1.0, [1]])
def test_a_message_version_it_cannot_read_is_refused(name: str, payload: bytes, version: object) -> None:
    with pytest.raises(PayloadError, match="unsupported schema version"):
        _decode(name, _with(payload, v=version))


def _event(kind: object) -> bytes:
    return _with(encoded()["events.upload_started"], kind=kind)


TOPIC = topic_of("events", encoded()["events.upload_started"])


@given(st.from_regex(EVENT_KIND_PATTERN, fullmatch=True))
def test_an_unknown_event_kind_is_kept_as_it_came(kind: str) -> None:
    message = decode(TOPIC, _event(kind))
    assert isinstance(message, Event)
    assert message.kind == kind
    assert isinstance(message.kind, EventKind) == (known_event_kind(kind) is not None)
    assert json.loads(encode(message))["kind"] == kind


@pytest.mark.parametrize("kind", list(EventKind))
def test_a_known_kind_decodes_to_its_enum_member(kind: EventKind) -> None:
    message = decode(TOPIC, _event(kind.value))
    assert isinstance(message, Event)
    assert message.kind is kind


@pytest.mark.parametrize(
    "kind",
    [
        "",
        "a" * (MAX_EVENT_KIND_CHARS + 1),
        "Disk_Low",
        "disk low",
        "disk-low",
        "1disk",
        "_disk",
        "disk\x00low",
        "dïsk",
        7,
        None,
        ["disk_low"],
    ],
)
def test_an_unsafe_event_kind_is_refused(kind: object) -> None:
    with pytest.raises(PayloadError, match="kind"):
        decode(TOPIC, _event(kind))


def test_every_known_kind_fits_the_pattern_a_newer_one_must_fit() -> None:
    assert all(len(kind.value) <= MAX_EVENT_KIND_CHARS for kind in EventKind)
    for kind in EventKind:
        assert decode(TOPIC, _event(kind.value))


@pytest.mark.parametrize(
    ("kind", "known", "label"),
    [
        ("upload_completed", EventKind.UPLOAD_COMPLETED, "upload_completed"),
        ("file_rejected", EventKind.FILE_REJECTED, "file_rejected"),
        ("battery_low", None, "unknown (battery_low)"),
        ("upload_completed_twice", None, "unknown (upload_completed_twice)"),
    ],
)
def test_known_kinds_and_their_labels(kind: str, known: EventKind | None, label: str) -> None:
    assert known_event_kind(kind) is known
    assert event_kind_label(kind) == label
