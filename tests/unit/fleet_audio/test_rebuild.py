"""Object -> original, bit for bit, for every input; a damaged object never gives a wrong file silently."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_audio.errors import RestoreError
from fleet_audio.rebuild import Expected, StreamReader, rebuild, rebuild_zstd
from tests.corpus import chunk, fmt_payload, write_wav
from tests.unit.fleet_audio.flactool import EXTRA_CHUNKS, encode_file, needs_flac

CHUNKS = EXTRA_CHUNKS

LAYOUTS = [
    # (name, write_wav keyword arguments)
    ("16-bit mono", {"channels": 1, "bits": 16}),
    ("16-bit stereo + chunks", {"channels": 2, "bits": 16, "extra_chunks": CHUNKS}),
    ("24-bit plain + chunks", {"channels": 2, "bits": 24, "extra_chunks": CHUNKS}),
    ("24-bit extensible", {"channels": 1, "bits": 24, "extensible": True, "extra_chunks": CHUNKS}),
    ("24-bit 6 channels", {"channels": 6, "bits": 24, "extensible": True}),
    ("8-bit odd data", {"channels": 1, "bits": 8, "extra_chunks": CHUNKS, "seconds": 0.30001}),
    ("float (zstd)", {"channels": 2, "float32": True, "extra_chunks": CHUNKS}),
]


def _roundtrip(obj: bytes, block: int = 1000) -> tuple[bytes, str]:
    out = io.BytesIO()
    result = rebuild([obj[i : i + block] for i in range(0, len(obj), block)], out.write)
    return out.getvalue(), result.kind


@pytest.mark.parametrize(("name", "kwargs"), LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_rebuild_is_bit_exact(name: str, kwargs: dict[str, object], tmp_path: Path) -> None:
    args: dict[str, object] = {"seconds": 0.4, "rate": 22050, "kind": "music", "seed": 5, **kwargs}
    path = write_wav(tmp_path / "in.wav", **args)  # type: ignore[arg-type]
    source, obj = encode_file(path, read_block=3000)
    original = path.read_bytes()
    sha = hashlib.sha256(original).hexdigest()
    out = io.BytesIO()
    if source.kind == "zstd":
        result = rebuild_zstd([obj], out.write, Expected(len(original), sha))
    else:
        raw_expected = Expected(len(original), sha) if source.kind == "raw" else None
        result = rebuild([obj], out.write, raw=source.kind == "raw", raw_expected=raw_expected)
    assert out.getvalue() == original
    assert (result.kind, result.size, result.sha256) == (source.kind, len(original), sha)


def test_last_chunk_without_pad_byte_is_rebuilt(tmp_path: Path) -> None:
    body = b"WAVE" + chunk(b"fmt ", fmt_payload(8000, 1, 16)) + chunk(b"data", b"\1\0\2\0") + b"tail\3\0\0\0xyz"
    path = tmp_path / "in.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    source, obj = encode_file(path)
    assert source.kind == "flac"
    assert _roundtrip(obj) == (path.read_bytes(), "flac")


@pytest.fixture(scope="module")
def flac_object(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    path = write_wav(tmp_path_factory.mktemp("obj") / "in.wav", 1.0, 16000, 2, 16, "field", CHUNKS)
    source, obj = encode_file(path)
    return obj, source.header_size


def _flip(obj: bytes, at: int) -> bytes:
    return obj[:at] + bytes([obj[at] ^ 0x10]) + obj[at + 1 :]


def test_damaged_audio_is_detected(flac_object: tuple[bytes, int]) -> None:
    obj, header_size = flac_object
    with pytest.raises(RestoreError):
        _roundtrip(_flip(obj, header_size + (len(obj) - header_size) // 2))


def test_damaged_chunk_is_detected(flac_object: tuple[bytes, int]) -> None:
    obj, _header_size = flac_object
    at = obj.index(b"wren")
    with pytest.raises(RestoreError, match="sha256"):
        _roundtrip(_flip(obj, at))


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_object_is_detected(flac_object: tuple[bytes, int], keep: float) -> None:
    obj, _header_size = flac_object
    with pytest.raises(RestoreError):
        _roundtrip(obj[: int(len(obj) * keep)])


@needs_flac
def test_flac_without_edgf_block_is_refused(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "in.wav", 0.2, 8000)
    subprocess.run(["flac", "-s", "--keep-foreign-metadata", "-o", str(tmp_path / "ref.flac"), str(path)], check=True)
    with pytest.raises(RestoreError, match="no edgf block"):
        _roundtrip((tmp_path / "ref.flac").read_bytes())


def test_raw_mismatch_is_detected() -> None:
    with pytest.raises(RestoreError, match="original had"):
        rebuild([b"RIFFjunk"], lambda _b: None, raw=True, raw_expected=Expected(8, "0" * 64))


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6), reads=st.integers(1, 50))
def test_stream_reader_returns_the_bytes_in_order(data: bytes, cuts: list[int], reads: int) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    reader = StreamReader(data[a:b] for a, b in itertools.pairwise(bounds))
    got = b""
    while piece := reader.read(reads):
        assert len(piece) == reads or len(got) + len(piece) == len(data)
        got += piece
    assert got == data
