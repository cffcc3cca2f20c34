"""The test corpus is realistic (compresses like real recordings, not like sine waves) and deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.corpus import Kind, write_wav
from tests.unit.fleet_audio.flactool import encode_file

# FLAC level 5 on real field/voice/music recordings at 16 bits: roughly 55-75 % of the WAV.
RATIOS = [("field", 0.55, 0.75), ("voice", 0.55, 0.75), ("music", 0.55, 0.75), ("noise", 0.75, 0.95)]


@pytest.mark.parametrize(("kind", "low", "high"), RATIOS, ids=[r[0] for r in RATIOS])
def test_compression_ratio_is_realistic(kind: str, low: float, high: float, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "c.wav", 6.0, 48000, 1, 16, kind, seed=11)  # type: ignore[arg-type]
    _source, obj = encode_file(path, level=5)
    ratio = len(obj) / path.stat().st_size
    assert low <= ratio <= high, f"{kind}: {ratio:.3f}"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    digests = [
        hashlib.sha256(write_wav(tmp_path / f"{i}.wav", 1.0, 16000, 2, 24, "field", seed=seed).read_bytes()).digest()
        for i, seed in enumerate((1, 1, 2))
    ]
    assert digests[0] == digests[1] != digests[2]


def test_the_bytes_of_each_kind_are_pinned(tmp_path: Path) -> None:
    """The sizes and ratios other tests rely on come from these exact bytes: a faster synthesis must not change
    them (2 s of 48 kHz covers every hold phase of the slowest octave, 2**16 samples). Changing the mix on
    purpose means a new digest here."""
    digest = hashlib.sha256()
    kinds: tuple[Kind, ...] = ("field", "voice", "music", "noise")
    for seed, kind in enumerate(kinds):
        digest.update(write_wav(tmp_path / f"{kind}.wav", 2.0, 48000, 2, 16, kind, seed=seed).read_bytes())
    assert digest.hexdigest() == "5f1028ea6b03b4dca2035b582ceb1fed3031f25b3091ec5b61420bb24d150db3"


def test_exact_length_and_sizes(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "x.wav", 1.00003, 44100, 2, 24, "voice", [(b"LIST", b"INFOx", "after")])
    frames = round(1.00003 * 44100)
    assert path.stat().st_size == 12 + 24 + 8 + frames * 6 + 8 + 5 + 1
    assert int.from_bytes(path.read_bytes()[4:8], "little") == path.stat().st_size - 8
