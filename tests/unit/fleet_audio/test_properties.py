"""Properties over generated and mutated WAVs: whatever open_source accepts comes back bit for bit."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_audio.rebuild import Expected, rebuild, rebuild_zstd
from fleet_audio.source import RecordingNotReady, RecordingRejected, check_finished
from tests.corpus import chunk, fmt_payload
from tests.unit.fleet_audio.flactool import encode_file

chunk_ids = st.binary(min_size=4, max_size=4).filter(lambda c: c not in (b"data", b"fmt "))
extra_chunks = st.lists(st.tuples(chunk_ids, st.binary(max_size=40)), max_size=3)


@st.composite
def wav_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A well-formed WAV (random chunks before and after, odd sizes, random PCM) and its frame count."""
    channels = draw(st.integers(1, 3))
    bits = draw(st.sampled_from([8, 16, 24]))
    frames = draw(st.integers(0, 2000))
    pcm = draw(st.binary(min_size=frames * channels * bits // 8, max_size=frames * channels * bits // 8))
    fmt = chunk(
        b"fmt ", fmt_payload(draw(st.sampled_from([8000, 44100, 96000])), channels, bits, False, draw(st.booleans()))
    )
    before = b"".join(chunk(c, p) for c, p in draw(extra_chunks))
    after = b"".join(chunk(c, p) for c, p in draw(extra_chunks))
    body = b"WAVE" + before + fmt + chunk(b"data", pcm) + after
    return b"RIFF" + struct.pack("<I", len(body)) + body, frames


def _assert_round_trip(path: Path) -> str:
    source, obj = encode_file(path, read_block=1000)
    original = path.read_bytes()
    out = io.BytesIO()
    expected = Expected(source.original_size, source.original_sha256())
    if source.kind == "zstd":
        rebuild_zstd([obj], out.write, expected)
    else:
        rebuild([obj], out.write, raw=source.kind == "raw", raw_expected=expected)
    assert out.getvalue() == original
    return source.kind


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=wav_files())
def test_generated_wavs_are_flac_and_round_trip(tmp_path: Path, data: tuple[bytes, int]) -> None:
    wav, frames = data
    path = tmp_path / "gen.wav"
    path.write_bytes(wav)
    check_finished(path, settled=True)
    assert _assert_round_trip(path) in (("flac",) if frames else ("raw", "zstd"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=wav_files(), flips=st.lists(st.tuples(st.integers(0, 120), st.integers(1, 255)), min_size=1, max_size=4))
def test_damaged_headers_are_refused_or_round_trip(
    tmp_path: Path, data: tuple[bytes, int], flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(data[0])
    for at, mask in flips:
        if at < len(damaged):
            damaged[at] ^= mask
    path = tmp_path / "damaged.wav"
    path.write_bytes(bytes(damaged))
    try:
        check_finished(path, settled=True)
    except (RecordingNotReady, RecordingRejected):
        return
    _assert_round_trip(path)
