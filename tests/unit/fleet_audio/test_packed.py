"""fleet_audio.packed (zstd for what FLAC cannot hold): bit-for-bit round trips, the 5 % sample rule, bounds."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_audio import packed
from fleet_audio.errors import RestoreError
from fleet_audio.objectkey import key_name
from fleet_audio.rebuild import Expected, rebuild_zstd
from fleet_audio.restore import file_name_for


def _blocks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=40_000), block=st.integers(1, 9000), repeat=st.integers(1, 30))
def test_any_bytes_round_trip_bit_for_bit_within_the_bound(data: bytes, block: int, repeat: int) -> None:
    original = data * repeat
    obj = b"".join(packed.compress(_blocks(original, block), len(original)))
    assert len(obj) <= packed.size_bound(len(original))
    out = io.BytesIO()
    expected = Expected(len(original), hashlib.sha256(original).hexdigest())
    result = rebuild_zstd(_blocks(obj, block), out.write, expected)
    assert out.getvalue() == original
    assert (result.kind, result.size) == ("zstd", len(original))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=20_000), a=st.integers(1, 5000), b=st.integers(1, 5000))
def test_output_does_not_depend_on_how_the_input_is_fed(data: bytes, a: int, b: int) -> None:
    """Resume re-reads a file and must produce the same object bytes."""
    one = b"".join(packed.compress(_blocks(data, a), len(data)))
    two = b"".join(packed.compress(_blocks(data, b), len(data)))
    assert one == two


@pytest.mark.parametrize(
    ("sample", "worth"),
    [
        (b"", False),
        (os.urandom(100_000), False),  # noise: zstd cannot save 5 %
        (b"abc" * 50_000, True),
        (os.urandom(90_000) + bytes(10_000), True),  # 10 % zeros: about 10 % saved
        (os.urandom(97_000) + bytes(3_000), False),  # 3 % zeros: under 5 %
    ],
    ids=["empty", "noise", "repetitive", "ten percent", "three percent"],
)
def test_the_sample_must_save_five_percent(sample: bytes, worth: bool) -> None:
    assert packed.saves_enough(sample) is worth


def _object(original: bytes) -> bytes:
    return b"".join(packed.compress([original], len(original)))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda obj, orig: obj[: len(obj) // 2], "zstd|bytes"),  # cut short
        (lambda obj, orig: obj[:20] + bytes([obj[20] ^ 0xFF]) + obj[21:], "zstd|sha256|bytes"),
        (lambda obj, orig: b"not zstd at all" + obj, "zstd"),
        (lambda obj, orig: _object(orig + b"x"), "more than|bytes"),  # a longer original
    ],
    ids=["truncated", "flipped", "garbage", "longer"],
)
def test_bad_objects_are_refused(damage, message: str) -> None:  # type: ignore[no-untyped-def]
    original = b"the original file " * 4000
    obj = damage(_object(original), original)
    with pytest.raises(RestoreError, match=message):
        rebuild_zstd([obj], lambda _d: None, Expected(len(original), hashlib.sha256(original).hexdigest()))


def test_output_blocks_are_bounded_even_for_a_zip_bomb() -> None:
    original = bytes(64 * 1024 * 1024)
    obj = _object(original)
    assert len(obj) < 64 * 1024
    biggest = 0

    def write(data: bytes) -> None:
        nonlocal biggest
        biggest = max(biggest, len(data))

    rebuild_zstd([obj], write, Expected(len(original), hashlib.sha256(original).hexdigest()))
    assert biggest <= packed.OUT_BLOCK


@pytest.mark.parametrize(
    ("name", "kind", "key", "restored"),
    [
        (b"dawn.f32.wav", "zstd", "dawn.f32.wav.zst", "dawn.f32.wav"),
        (b"notes.txt", "zstd", "notes.txt.zst", "notes.txt"),
        (b"dawn.f32.wav", "raw", "dawn.f32.wav", "dawn.f32.wav"),
    ],
)
def test_zstd_keys_add_zst_and_restore_to_the_name(name: bytes, kind: str, key: str, restored: str) -> None:
    assert key_name(name, kind) == key  # type: ignore[arg-type]
    assert file_name_for(f"a/b/{key}") == restored


def test_a_raw_file_named_like_a_zstd_key_cannot_take_it() -> None:
    raw = key_name(b"dawn.wav.zst", "raw")
    assert raw != key_name(b"dawn.wav", "zstd")
    assert raw.startswith("dawn.wav__")
    assert raw.endswith(".zst")


def test_the_magic_is_zstandards_frame_header() -> None:
    import zstandard  # packed loads it only when it compresses or decompresses

    assert packed.MAGIC == zstandard.FRAME_HEADER
