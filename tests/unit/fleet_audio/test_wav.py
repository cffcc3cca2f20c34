"""Chunk-table rules: what is not ready, what is rejected, what is stored raw, what becomes FLAC."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet_audio.source import RecordingNotReady, RecordingRejected, check_finished, open_source
from tests.corpus import chunk, fmt_payload, write_wav
from tests.unit.fleet_audio.flactool import unpacked


def _wav(tmp_path: Path, **kw: object) -> Path:
    return write_wav(tmp_path / "rec.wav", 0.25, 8000, **kw)  # type: ignore[arg-type]


def _patch(path: Path, offset: int, data: bytes) -> Path:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    return path


def _riff(*chunks: bytes, riff_size: int | None = None, magic: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return magic + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


PCM16 = chunk(b"fmt ", fmt_payload(8000, 1, 16))
DATA = chunk(b"data", b"\1\0\2\0")
ALAW = chunk(b"fmt ", struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "rec.wav"
    path.write_bytes(data)
    return path


# Inputs a recorder still writing produces: not ready now, rejected once the file has settled.
IN_PROGRESS: list[tuple[str, Callable[[Path], Path]]] = [
    ("RIFF size 0", lambda p: _patch(_wav(p), 4, struct.pack("<I", 0))),
    ("RIFF size 0xFFFFFFFF", lambda p: _patch(_wav(p), 4, b"\xff\xff\xff\xff")),
    ("data size 0xFFFFFFFF", lambda p: _patch(_patch(_wav(p), 4, struct.pack("<I", 8)), 4, b"\xff" * 4)),
    ("truncated (header says more)", lambda p: _write(p, _wav(p).read_bytes()[:-100])),
    ("only part of the RIFF header", lambda p: _write(p, b"RIFF\x10\x00")),
    (
        "data chunk longer than the RIFF",
        lambda p: _write(p, _riff(PCM16, b"data" + struct.pack("<I", 1000) + b"\0" * 10)),
    ),
]


@pytest.mark.parametrize(("name", "make"), IN_PROGRESS, ids=[c[0] for c in IN_PROGRESS])
def test_in_progress_is_not_ready_then_rejected(name: str, make: Callable[[Path], Path], tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(RecordingNotReady):
        check_finished(path)
    with pytest.raises(RecordingRejected, match="truncated or was never finalized"):
        check_finished(path, settled=True)
    with pytest.raises(RecordingRejected):
        open_source(path, 5)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    for call in (lambda: check_finished(path), lambda: open_source(path, 5)):
        with pytest.raises(RecordingRejected, match="empty file"):
            call()


def test_unreadable_is_rejected(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "dangling.wav"):  # a directory, a link to nowhere
        if path != tmp_path:
            path.symlink_to(tmp_path / "nowhere")
        with pytest.raises(RecordingRejected, match="unreadable"):
            check_finished(path, settled=True)
        with pytest.raises(RecordingRejected, match="unreadable"):
            open_source(path, 5)


def test_vanished_file_is_not_ready_but_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(RecordingNotReady, match="vanished"):
        check_finished(tmp_path / "gone.wav", settled=True)
    with pytest.raises(RecordingRejected, match="unreadable"):
        open_source(tmp_path / "gone.wav", 5)


def test_growing_file_is_not_ready_and_stored_raw_once_settled(tmp_path: Path) -> None:
    path = _wav(tmp_path)
    with open(path, "ab") as f:
        f.write(b"\1\2\3\4")
    with pytest.raises(RecordingNotReady):
        check_finished(path)
    check_finished(path, settled=True)
    source = open_source(path, 5)
    assert source.kind in ("raw", "zstd")  # zstd when it saves 5 % (docs/audio-format.md)
    assert source.raw_reason == "4 bytes after the end of the RIFF chunk"
    source.close()


RAW: list[tuple[str, Callable[[Path], Path], str]] = [
    ("float", lambda p: _wav(p, float32=True), "32-bit float PCM"),
    ("float extensible", lambda p: _wav(p, float32=True, extensible=True), "32-bit float PCM"),
    ("32-bit int", lambda p: _wav(p, bits=32), "32-bit integer PCM"),
    ("not a WAV", lambda p: _write(p, b"ID3\x04 this is an mp3 really" * 10), "not a WAV (no RIFF/WAVE header)"),
    ("RIFF but not WAVE", lambda p: _write(p, b"RIFF\x04\x00\x00\x00AVI "), "not a WAV (no RIFF/WAVE header)"),
    ("no fmt", lambda p: _write(p, _riff(chunk(b"data", b"\0\0"))), "0 fmt and 1 data chunks (need one each)"),
    ("two data", lambda p: _write(p, _riff(PCM16, chunk(b"data", b"\0\0"), chunk(b"data", b"\0\0"))), "1 fmt and 2"),
    ("no samples", lambda p: _write(p, _riff(PCM16, chunk(b"data", b""))), "no audio samples"),
    ("partial frame", lambda p: _write(p, _riff(PCM16, chunk(b"data", b"\0\0\0"))), "not a whole number"),
    (
        "A-law",
        lambda p: _write(p, _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8)), DATA)),
        "0x0006",
    ),
    (
        "odd data without pad",
        lambda p: _write(p, _riff(chunk(b"fmt ", fmt_payload(8000, 1, 8)), b"data\x03\x00\x00\x00abc")),
        "without a zero pad byte",
    ),
    (
        "RF64",
        lambda p: _write(p, b"RF64\xff\xff\xff\xffWAVEds64" + struct.pack("<IQQQ", 28, 40, 0, 0) + b"\0" * 4),
        "RF64 container",
    ),
]


@pytest.mark.parametrize(("name", "make", "reason"), RAW, ids=[c[0] for c in RAW])
def test_unusual_input_is_stored_raw(name: str, make: Callable[[Path], Path], reason: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    check_finished(path)
    source = open_source(path, 5)
    try:
        assert source.kind in ("raw", "zstd")  # zstd when it saves 5 % (docs/audio-format.md)
        assert reason in source.raw_reason
        assert unpacked(source, b"".join(source.body())) == path.read_bytes()
        assert source.header() == b""
    finally:
        source.close()


def test_odd_sized_chunks_and_last_chunk_without_pad_stay_flac(tmp_path: Path) -> None:
    path = _write(tmp_path, _riff(chunk(b"odd1", b"abc"), PCM16, DATA, b"tail\x03\x00\x00\x00xyz"))
    source = open_source(path, 5)
    assert source.kind == "flac"
    source.close()
