"""recmeta: recorder metadata from bext, GUANO, iXML and LIST/INFO chunks, and the recorded-at order."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_audio import recmeta
from fleet_audio.flacmeta import read_header
from fleet_audio.recmeta import chunks_from_pieces, chunks_from_riff, extract, name_timestamp
from fleet_audio.source import object_key, open_source
from tests.corpus import write_wav
from tests.unit.fleet_audio.flactool import encode_file
from tests.unit.fleet_audio.recorders import audiomoth_info, bext, guano, ixml

T0 = datetime(2026, 5, 28, 6, 15, tzinfo=UTC)
MTIME = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("chunks", "name", "at", "source"),
    [
        ([(b"bext", bext())], "x.wav", T0, "bext"),
        ([(b"bext", bext("2026:05:28", "06-15-00"))], "x.wav", T0, "bext"),  # EBU allows any separator
        ([(b"bext", bext("2026_05_28", "061500"))], "x.wav", T0, "bext"),
        ([(b"guan", guano())], "x.wav", T0 + timedelta(hours=4), "guano"),
        ([(b"guan", guano("2026-05-28T06:15:00Z"))], "x.wav", T0, "guano"),
        ([(b"guan", guano("2026-05-28 06:15:00"))], "x.wav", T0, "guano"),  # no offset: taken as UTC
        ([(b"iXML", ixml())], "x.wav", T0, "ixml"),
        # order: bext before GUANO before iXML whatever the chunk order
        ([(b"iXML", ixml("2026-05-30")), (b"guan", guano("2026-05-29T06:15:00Z")), (b"bext", bext())], "x", T0, "bext"),
        ([(b"iXML", ixml("2026-05-30")), (b"guan", guano("2026-05-28T06:15:00Z"))], "x", T0, "guano"),
        # unset or nonsense dates fall through to the next source
        ([(b"bext", bext("0000-00-00", "00:00:00")), (b"iXML", ixml())], "x", T0, "ixml"),
        ([(b"bext", bext("", ""))], "20260528_061500.WAV", T0, "filename"),
        ([(b"bext", bext("2026-13-45", "99:00:00"))], "x.wav", MTIME, "mtime"),
        ([(b"guan", guano("yesterday"))], "x.wav", MTIME, "mtime"),
        ([(b"guan", guano("-"))], "x.wav", MTIME, "mtime"),  # no Timestamp key
        ([(b"LIST", audiomoth_info())], "20260528_061500.WAV", T0, "filename"),
        ([], "SMM07171_20260528_061500.wav", T0, "filename"),
        ([], "x.wav", MTIME, "mtime"),
    ],
)
def test_recorded_at_order(chunks: list[tuple[bytes, bytes]], name: str, at: datetime, source: str) -> None:
    found = extract(chunks, file_name=name, mtime=MTIME)
    assert (found.recorded_at, found.source) == (at, source)


@pytest.mark.parametrize(
    ("name", "at", "pattern"),
    [
        ("20260528_061500.WAV", T0, "audiomoth"),
        ("20260528_061500", T0, "audiomoth"),
        ("SMM07171_20260528_061500.wav", T0, "songmeter"),
        ("S4A12345_20260528_061500_+1.wav", T0, "songmeter"),
        ("site-4_0+1_20260528_061500.wav", T0, "songmeter"),
        ("2026-05-28_06-15-00.wav", T0, "iso"),
        ("marsh 2026-05-28T06:15:00.wav", T0, "iso"),
        ("rec_2026-05-28 06.15.00_take2.wav", T0, "iso"),
        ("rec20260528T061500.wav", T0, "compact"),
        ("20260528061500.wav", T0, "compact"),
    ],
)
def test_file_name_patterns(name: str, at: datetime, pattern: str) -> None:
    assert name_timestamp(name) == (at, pattern)


@pytest.mark.parametrize(
    "name",
    ["dawn.wav", "ZOOM0001.WAV", "20261328_061500.WAV", "20260528_256100.WAV", "00000000_000000.WAV",
     "120260528_061500x.wav", "2026-05-28.wav", "", "."],
)  # fmt: skip
def test_names_without_a_time(name: str) -> None:
    assert name_timestamp(name) is None


def test_fields_of_each_format() -> None:
    found = extract(
        [(b"bext", bext(time_reference=2**33 + 5)), (b"guan", guano()), (b"iXML", ixml()), (b"LIST", audiomoth_info())]
    )
    assert found.fields["bext"] == {
        "description": "dawn chorus",
        "originator": "MixPre-6 II",
        "originator_reference": "USSDVBN0528061500",
        "origination_date": "2026-05-28",
        "origination_time": "06:15:00",
        "time_reference": 2**33 + 5,
        "coding_history": "A=PCM,F=48000,W=24,M=stereo,T=MixPre-6 II",
    }
    assert found.fields["guano"]["Make"] == "Wildlife Acoustics, Inc."
    assert found.fields["guano"]["Loc Position"] == "42.44986 -76.47889"
    assert found.fields["guano"]["Temperature Int"] == "18.25"
    assert found.fields["ixml"]["project"] == "Marsh survey"
    assert found.fields["ixml"]["take"] == "3"
    assert found.fields["ixml"]["note"] == "north hide"
    assert found.fields["info"]["IART"] == "AudioMoth 24F319055F5BE2B8"
    assert found.fields["info"]["ICMT"].startswith("Recorded at 06:15:00 28/05/2026 (UTC)")


def test_bounded_output() -> None:
    many = "\n".join(f"Key{i}: {'v' * 300}" for i in range(500)).encode()
    found = extract([(b"guan", many), (b"bext", bext(description="d" * 300, history="h" * 100_000))])
    assert len(found.fields["guano"]) <= recmeta.MAX_KEYS + 1
    assert found.fields["guano"]["truncated"] is True
    assert all(len(v) <= recmeta.MAX_TEXT for v in found.fields["guano"].values() if isinstance(v, str))
    assert len(found.fields["bext"]["coding_history"]) == recmeta.MAX_LONG_TEXT
    huge = extract([(b"iXML", b"<a>" + b"x" * (recmeta.MAX_CHUNK + 1) + b"</a>")])
    assert "not read" in huge.fields["ixml"]["error"]


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<BWFXML><NOTE>&b;&b;&b;</NOTE></BWFXML>",  # billion laughs, small
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><BWFXML><NOTE>&x;</NOTE></BWFXML>',
        b'<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><BWFXML/>',
    ],
)
def test_ixml_with_a_dtd_is_refused(body: bytes) -> None:
    found = extract([(b"iXML", body)], mtime=MTIME)
    assert "UnsafeXml" in found.fields["ixml"]["error"]
    assert found.source == "mtime"


def test_malformed_sections_keep_the_others() -> None:
    found = extract([(b"bext", b"short"), (b"iXML", b"<BWFXML><NOTE>"), (b"guan", guano())])
    assert "too short" in found.fields["bext"]["error"]
    assert "ExpatError" in found.fields["ixml"]["error"]
    assert found.source == "guano"


def test_chunk_lists_from_a_wav_and_from_flac_pieces(tmp_path: Path) -> None:
    extra = [(b"bext", bext(), "before"), (b"guan", guano(), "before"), (b"iXML", ixml(), "after")]
    path = write_wav(tmp_path / "r.wav", 0.05, 8000, extra_chunks=extra)
    from_wav = chunks_from_riff(path.read_bytes())
    _, obj = encode_file(path)
    header = read_header(_reader(obj))
    from_flac = chunks_from_pieces(header.foreign)
    assert [c for c, _ in from_wav] == [c for c, _ in from_flac] == [b"bext", b"guan", b"fmt ", b"data", b"iXML"]
    assert from_wav == from_flac
    assert extract(from_flac).fields == extract(from_wav).fields


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        pos += n
        return data[pos - n : pos]

    return read


@given(st.lists(st.tuples(st.sampled_from([b"bext", b"guan", b"iXML", b"LIST", b"junk"]), st.binary(max_size=900))),
       st.text(max_size=80), st.binary(max_size=300))  # fmt: skip
def test_never_raises_on_arbitrary_bytes(chunks: list[tuple[bytes, bytes]], name: str, riff: bytes) -> None:
    found = extract(chunks, file_name=name, mtime=MTIME)
    assert found.source in recmeta.SOURCES
    assert found.recorded_at is not None
    assert found.recorded_at.tzinfo is not None
    extract(chunks_from_riff(b"RIFF\xff\xff\xff\xffWAVE" + riff))
    extract(chunks_from_pieces([b"RIFF\0\0\0\0WAVE", riff]))


@given(st.text(alphabet="0123456789_-T:. abcWAVwav", max_size=40))
def test_name_patterns_never_raise(name: str) -> None:
    found = name_timestamp(name)
    assert found is None or recmeta.MIN_YEAR <= found[0].year <= recmeta.MAX_YEAR


@given(st.datetimes(min_value=datetime(1980, 1, 2), max_value=datetime(2199, 12, 30)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))  # fmt: skip
def test_guano_timestamps_with_any_offset(at: datetime, minutes: int) -> None:
    local = at.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=minutes)))
    found = extract([(b"guan", guano(local.isoformat()))])
    assert (found.recorded_at, found.source) == (local, "guano")


# --- the agent's object keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra", "day"),
    [
        ("dawn.wav", [(b"bext", bext("2026-05-20"), "before")], "2026/05/20"),
        ("dawn.wav", [(b"guan", guano("2026-05-21T23:30:00-04:00"), "before")], "2026/05/22"),  # UTC day
        ("dawn.wav", [(b"iXML", ixml("2026-05-23"), "after")], "2026/05/23"),
        ("20260524_061500.WAV", [(b"LIST", audiomoth_info(), "before")], "2026/05/24"),
        ("SMM07171_20260525_061500.wav", [], "2026/05/25"),
        ("dawn.wav", [], "2026/06/01"),  # the mtime, as before
        ("dawn.wav", [(b"bext", bext("", ""), "before")], "2026/06/01"),
    ],
)
@pytest.mark.parametrize("level", [5, -1])
def test_object_key_takes_the_recordings_day(
    tmp_path: Path, name: str, extra: list[tuple[bytes, bytes, str]], day: str, level: int
) -> None:
    path = write_wav(tmp_path / name, 0.05, 8000, extra_chunks=extra)
    os.utime(path, ns=(0, int(MTIME.timestamp()) * 10**9))
    source = open_source(path, level)
    try:
        assert object_key("rec", "pi-7", path, source).startswith(f"rec/pi-7/{day}/")
    finally:
        source.close()


def test_object_key_of_a_raw_non_wav_uses_its_name(tmp_path: Path) -> None:
    path = tmp_path / "20260524_061500.mp3"
    path.write_bytes(b"ID3" + random.Random(7).randbytes(100))  # incompressible: stays raw, not zstd
    source = open_source(path, 5)
    try:
        assert object_key("", "pi-7", path, source) == "pi-7/2026/05/24/20260524_061500.mp3"
    finally:
        source.close()


def test_object_key_of_a_float_wav_with_bext(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "f.wav", 0.05, 8000, float32=True, extra_chunks=[(b"bext", bext(), "before")])
    source = open_source(path, 5)
    try:
        assert source.kind == "zstd"  # FLAC cannot hold float: zstd, which saves more than 5 % on a tone
        assert object_key("", "pi-7", path, source) == "pi-7/2026/05/28/f.wav.zst"
    finally:
        source.close()
