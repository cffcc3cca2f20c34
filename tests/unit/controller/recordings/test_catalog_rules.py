"""The catalog's pure parts: the row values from an object's facts and the agent's clock, ranged reads."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.recordings.catalog import recorded
from controller.recordings.objects import FIRST_READ, MAX_HEADER, CatalogError, ObjectFacts, RangedObject
from tests.unit.fleet_audio.recorders import bext

MTIME = datetime(2026, 6, 1, 12, tzinfo=UTC)
T0 = datetime(2026, 5, 28, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("chunks", "offset", "source", "suspect", "note"),
    [
        ([(b"bext", bext())], None, "bext", False, False),
        ([(b"bext", bext())], 29.9, "bext", False, False),
        ([(b"bext", bext())], 30.0, "bext", True, False),  # the alert rule's threshold: |offset| >= clock_skew_s
        ([(b"bext", bext())], -45.0, "bext", True, False),
        ([], -45.0, "mtime", True, True),
        ([], 10.0, "mtime", False, False),
    ],
)
def test_clock_suspect(chunks: list[tuple[bytes, bytes]], offset: float | None, source: str, suspect: bool,
                       note: bool) -> None:  # fmt: skip
    values = recorded(ObjectFacts(mtime=MTIME, chunks=chunks), "x.wav", offset, 30.0)
    assert (values["recorded_at_source"], values["clock_suspect"]) == (source, suspect)
    assert ("clock" in values["recorder_metadata"]) == suspect
    assert ("note" in values["recorder_metadata"].get("clock", {})) == note


def test_no_time_at_all() -> None:
    values = recorded(ObjectFacts(), "notes.txt", None, 30.0)
    assert (values["recorded_at"], values["recorded_at_source"]) == (None, "")


def test_facts_are_copied() -> None:
    facts = ObjectFacts(48000, 2, 24, 1.5, MTIME, [(b"bext", bext())])
    values = recorded(facts, "x.wav", None, 30.0)
    assert (values["sample_rate"], values["channels"], values["bits_per_sample"], values["duration_s"]) == (
        48000, 2, 24, 1.5,
    )  # fmt: skip
    assert values["recorded_at"] == T0


class FakeClient:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.gets: list[tuple[int, int]] = []

    def get_object(self, _bucket: str, _key: str, *, offset: int, length: int) -> Any:
        self.gets.append((offset, length))
        body = io.BytesIO(self.data[offset : offset + length])
        body.release_conn = lambda: None  # type: ignore[attr-defined]
        return body


def test_ranged_reads_are_buffered() -> None:
    data = bytes(range(256)) * 1024
    client = FakeClient(data)
    obj = RangedObject(client, "b", "k", len(data))  # type: ignore[arg-type]
    assert obj.read(4) + obj.read(100) == data[:104]
    assert obj.range(FIRST_READ - 10, 20) == data[FIRST_READ - 10 : FIRST_READ + 10]
    assert obj.range(len(data) - 5, 100) == data[-5:]
    assert obj.range(len(data), 10) == b""
    assert client.gets == [(0, FIRST_READ), (FIRST_READ - 10, FIRST_READ), (len(data) - 5, FIRST_READ)]


def test_a_header_longer_than_ours_is_refused() -> None:
    obj = RangedObject(FakeClient(b""), "b", "k", MAX_HEADER * 2)  # type: ignore[arg-type]
    obj.pos = MAX_HEADER - 2
    with pytest.raises(CatalogError) as caught:
        obj.read(4)
    assert caught.value.kind == "not_ours"
    assert not caught.value.transient
