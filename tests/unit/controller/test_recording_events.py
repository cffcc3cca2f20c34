"""Recording events, the pure parts: the payload, its bytes, the event id receivers de-duplicate on, and the
signature a receiver checks (docs/recordings-events.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.recordings.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_S,
    body,
    event_id,
    headers,
    payload,
    sign,
    verify,
)
from controller.store.models import Recording

NOW = 1_800_000_000.0
SECRET = "s3cret-s3cret-s3cret"


def recording(**changes: Any) -> Recording:
    values: dict[str, Any] = {
        "id": 7,
        "key": "field/pi-01/2026/12/03/rec-0001.flac",
        "agent_id": "pi-01",
        "site": "garden",
        "file": "rec-0001.wav",
        "uploaded_at": datetime(2026, 12, 3, 10, 0, 5, tzinfo=UTC),
        "recorded_at": datetime(2026, 12, 3, 9, 59, 0, tzinfo=UTC),
        "recorded_at_source": "bext",
        "duration_s": 60.0,
        "sample_rate": 48_000,
        "channels": 1,
        "bits_per_sample": 16,
        "original_bytes": 5_760_044,
        "stored_bytes": 3_700_000,
        "sha256": "ab" * 32,
        "codec": "flac",
        "recorder_metadata": {"bext.originator": "AudioMoth"},
        "status": "cataloged",
        "cataloged_at": datetime(2026, 12, 3, 10, 0, 9),  # SQLite gives naive UTC
    }
    values.update(changes)
    return Recording(**values)


def test_the_payload_says_what_was_stored_and_when() -> None:
    event = payload(recording(), bucket="recordings")
    assert (event["type"], event["version"]) == ("recording.stored", 1)
    assert event["id"] == event_id("field/pi-01/2026/12/03/rec-0001.flac", "ab" * 32)
    assert event["occurred_at"] == "2026-12-03T10:00:09Z"
    r = event["recording"]
    assert (r["bucket"], r["key"], r["agent_id"], r["site"], r["sha256"]) == (
        "recordings", "field/pi-01/2026/12/03/rec-0001.flac", "pi-01", "garden", "ab" * 32,
    )  # fmt: skip
    assert (r["recorded_at"], r["recorded_at_source"], r["clock_suspect"]) == ("2026-12-03T09:59:00Z", "bext", False)
    assert (r["duration_s"], r["sample_rate"], r["channels"], r["bits_per_sample"]) == (60.0, 48_000, 1, 16)
    assert json.loads(body(event)) == event  # plain JSON


def test_unknown_audio_facts_are_null() -> None:
    r = payload(recording(recorded_at=None, duration_s=None, sample_rate=None, recorded_at_source=""))["recording"]
    assert (r["recorded_at"], r["duration_s"], r["sample_rate"]) == (None, None, None)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ({}, True),
        ({"id": 8, "cataloged_at": datetime(2027, 1, 1)}, True),  # the same object content, told again
        ({"sha256": "cd" * 32}, False),  # other content under the same key
        ({"key": "field/pi-01/other.flac"}, False),
    ],
)
def test_the_event_id_is_the_object_and_its_content(other: dict[str, object], same: bool) -> None:
    assert (payload(recording(**other))["id"] == payload(recording())["id"]) is same


def test_the_same_event_is_the_same_bytes() -> None:
    event = payload(recording())
    assert body(event) == body(json.loads(body(event)))


@given(st.binary(max_size=512), st.text(min_size=16, max_size=64))
def test_a_signed_body_verifies_and_a_changed_one_does_not(sent: bytes, secret: str) -> None:
    timestamp = int(NOW)
    signature = sign(secret, timestamp, sent)
    assert signature.startswith("sha256=")
    assert len(signature) == 7 + 64
    assert verify(secret, str(timestamp), signature, sent, NOW)
    assert not verify(secret, str(timestamp), signature, sent + b" ", NOW)
    assert not verify(secret + "x", str(timestamp), signature, sent, NOW)
    assert not verify(secret, str(timestamp + 1), signature, sent, NOW)  # the time is signed too


@pytest.mark.parametrize(
    ("age_s", "ok"), [(0, True), (TOLERANCE_S, True), (TOLERANCE_S + 1, False), (-TOLERANCE_S - 1, False)]
)
def test_an_old_request_is_a_replay(age_s: int, ok: bool) -> None:
    sent = body(payload(recording()))
    timestamp = int(NOW) - age_s
    assert verify(SECRET, str(timestamp), sign(SECRET, timestamp, sent), sent, NOW) is ok


@pytest.mark.parametrize("timestamp", ["", "-5", "1e9", "soon"])
def test_a_malformed_timestamp_does_not_verify(timestamp: str) -> None:
    assert not verify(SECRET, timestamp, sign(SECRET, int(NOW), b"{}"), b"{}", NOW)


def test_the_headers_carry_the_event_id_and_a_verifiable_signature() -> None:
    event = payload(recording())
    sent = body(event)
    sent_headers = headers(SECRET, event, sent, NOW)
    assert sent_headers[EVENT_ID_HEADER] == event["id"]
    assert verify(SECRET, sent_headers[TIMESTAMP_HEADER], sent_headers[SIGNATURE_HEADER], sent, NOW + 10)
