"""body() is deterministic: read block sizes and repeated runs never change the object (resume relies on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_audio import flacmeta
from tests.corpus import write_wav
from tests.unit.fleet_audio.flactool import encode_file


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, bytes]]:
    out = {}
    for bits in (16, 24):
        path = write_wav(tmp_path_factory.mktemp(f"d{bits}") / "in.wav", 0.8, 22050, 2, bits, "field", seed=bits)
        out[bits] = (path, encode_file(path)[1])
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bits=st.sampled_from([16, 24]), read_block=st.integers(1, 200_000))
def test_read_block_size_does_not_change_the_object(
    recordings: dict[int, tuple[Path, bytes]], bits: int, read_block: int
) -> None:
    path, reference = recordings[bits]
    assert encode_file(path, read_block=read_block)[1] == reference


@settings(max_examples=100)
@given(
    blocks=st.tuples(st.integers(16, 65535), st.integers(16, 65535)),
    frames=st.tuples(st.integers(0, 2**24 - 1), st.integers(0, 2**24 - 1)),
    rate=st.integers(1, 655350),
    channels=st.integers(1, 8),
    bits=st.integers(4, 32),
    total=st.integers(0, 2**36 - 1),
    md5=st.binary(min_size=16, max_size=16),
)
def test_streaminfo_packs_and_unpacks(
    blocks: tuple[int, int], frames: tuple[int, int], rate: int, channels: int, bits: int, total: int, md5: bytes
) -> None:
    info = flacmeta.StreamInfo(*blocks, *frames, rate, channels, bits, total, md5)
    assert flacmeta.StreamInfo.unpack(info.pack()) == info


@given(size=st.integers(0, 2**64 - 1), digest=st.binary(min_size=32, max_size=32))
def test_edgf_packs_and_unpacks(size: int, digest: bytes) -> None:
    info = flacmeta.EdgfInfo(size, digest.hex())
    packed = info.pack()
    assert len(packed) + 4 == flacmeta.EDGF_BLOCK_SIZE
    assert flacmeta.EdgfInfo.unpack(packed) == info
