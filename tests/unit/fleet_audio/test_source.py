"""open_source / ObjectSource: FLAC objects the reference tool accepts, raw fallbacks, change detection."""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc
from collections.abc import Generator
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from fleet_audio.source import SourceChanged, object_key, open_source
from tests.corpus import write_wav
from tests.unit.fleet_audio.flactool import (
    EXTRA_CHUNKS,
    encode_file,
    flac_decode_foreign,
    flac_test,
    metaflac_show,
    needs_flac,
    unpacked,
)

EXTRA = EXTRA_CHUNKS

CASES = [
    # (name, channels, bits, extensible, extra chunks, seconds, `flac -d --keep-foreign-metadata` exact?)
    # flac 1.4 writes its own fmt chunk: WAVE_FORMAT_EXTENSIBLE for 24-bit, plain PCM for 16-bit stereo.
    ("16-bit mono", 1, 16, False, (), 1.3, True),
    ("16-bit stereo + chunks", 2, 16, False, EXTRA, 1.0, True),
    ("24-bit plain PCM", 1, 24, False, EXTRA, 0.7, False),
    ("24-bit stereo extensible", 2, 24, True, EXTRA, 0.7, True),
    ("16-bit stereo extensible", 2, 16, True, (), 0.5, False),
    ("8-bit mono odd frames", 1, 8, False, EXTRA, 0.50001, True),
]


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int, int, bool]:
    _name, channels, bits, extensible, extra, seconds, reference_exact = request.param
    path = write_wav(tmp_path / "rec.wav", seconds, 16000, channels, bits, "voice", extra, extensible=extensible)
    return path, channels, bits, reference_exact


@needs_flac
def test_object_is_valid_flac_with_true_streaminfo(case: tuple[Path, int, int, bool], tmp_path: Path) -> None:
    path, channels, bits, _reference_exact = case
    source, obj = encode_file(path)
    assert source.kind == "flac"
    assert len(source.header()) == source.header_size
    assert len(obj) <= source.size_bound
    assert source.original_sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
    flac_path = tmp_path / "obj.flac"
    flac_path.write_bytes(obj)
    assert flac_test(flac_path).returncode == 0
    shown = metaflac_show(flac_path)
    width = bits // 8
    data = _data_bytes(path)
    frames = len(data) // (width * channels)
    assert shown == {
        "bps": str(bits),
        "total_samples": str(frames),
        "md5": _flac_md5(data, width),
        "channels": str(channels),
    }


def _data_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    at = raw.index(b"data")
    size = int.from_bytes(raw[at + 4 : at + 8], "little")
    return raw[at + 8 : at + 8 + size]


def _flac_md5(data: bytes, width: int) -> str:
    """MD5 as FLAC defines it: signed little-endian samples (8-bit WAV is unsigned: shift it)."""
    if width == 1:
        data = (np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128).astype(np.int8).tobytes()
    return hashlib.md5(data).hexdigest()


@needs_flac
def test_reference_decoder_gives_back_the_wav(case: tuple[Path, int, int, bool], tmp_path: Path) -> None:
    path, _channels, _bits, reference_exact = case
    _source, obj = encode_file(path)
    (tmp_path / "obj.flac").write_bytes(obj)
    out = tmp_path / "ref.wav"
    assert flac_decode_foreign(tmp_path / "obj.flac", out).returncode == 0
    # Where flac rewrites the fmt chunk the audio still matches: only the header differs (restore.py is exact).
    assert (out.read_bytes() == path.read_bytes()) is reference_exact
    assert _data_bytes(out) == _data_bytes(path)


def test_float_wav_is_zstd(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "f.wav", 0.3, 16000, 2, float32=True)
    source, obj = encode_file(path)
    assert (source.kind, source.raw_reason, source.header_size) == ("zstd", "32-bit float PCM", 0)
    assert source.metadata["edgefleet-format"] == "zstd-v1"
    assert len(obj) <= 0.95 * path.stat().st_size <= source.size_bound
    assert unpacked(source, obj) == path.read_bytes()
    assert source.metadata["edgefleet-original-sha256"] == hashlib.sha256(unpacked(source, obj)).hexdigest()


def test_level_minus_one_is_raw(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 0.2, 16000)
    source, obj = encode_file(path, level=-1)
    assert source.kind == "raw"
    assert obj == path.read_bytes()


def test_change_during_body_raises(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 2.0, 16000)
    source = open_source(path, 5, read_block=4096)
    body = source.body()
    next(body)
    with open(path, "ab") as f:
        f.write(b"more")
    with pytest.raises(SourceChanged):
        list(body)
    source.close()


def test_vanished_file_raises(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 1.0, 16000)
    source = open_source(path, 5)
    path.unlink()
    with pytest.raises(SourceChanged):
        list(source.body())
    source.close()


def test_object_key(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "dawn.wav", 0.1, 8000)
    os.utime(path, ns=(0, 1_780_000_000 * 10**9))  # 2026-05-28 UTC
    flac = open_source(path, 5)
    raw = open_source(path, -1)
    assert object_key("/rec/", "pi-7", path, flac) == "rec/pi-7/2026/05/28/dawn.flac"
    assert object_key("", "pi-7", path, raw) == "pi-7/2026/05/28/dawn.wav"
    flac.close()
    raw.close()


def _peak_traced(path: Path, level: int) -> int:
    source = open_source(path, level)
    tracemalloc.start()
    try:
        for _block in source.body():
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        source.close()


@pytest.mark.parametrize("level", [5, -1])
def test_memory_does_not_grow_with_the_file(tmp_path: Path, level: int) -> None:
    small = write_wav(tmp_path / "small.wav", 10, 48000, 2, 16, "noise")
    large = write_wav(tmp_path / "large.wav", 60, 48000, 2, 16, "noise")  # 11.5 MB
    peak_small, peak_large = _peak_traced(small, level), _peak_traced(large, level)
    assert peak_large < 4 * 1024 * 1024
    assert peak_large < peak_small * 1.2 + 64 * 1024


def test_abandoned_body_is_safe_and_a_new_body_is_identical(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 3.0, 16000, 2, 24)
    source = open_source(path, 5, read_block=8192)
    first = cast(Generator[bytes, None, None], source.body())
    head = [next(first), next(first)]
    first.close()  # the engine aborts a part upload: the encoder is finished, not left to the GC
    del first
    gc.collect()
    again = list(source.body())
    assert b"".join(again).startswith(b"".join(head))
    source.close()
