"""Byte ranges, download names, what plays, per-user transfer limits; the spectrogram cache and its single
computation per recording."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.mediahttp import (
    ByteRange,
    TransferSlots,
    Unsatisfiable,
    content_disposition,
    download_name,
    parse_range,
    play_type,
    unpacked,
)
from dashboard.spectrocache import Busy, DiskCache, SpectrogramService, cache_name

RANGES = [
    (None, 100, None),
    ("", 100, None),
    ("bytes=0-", 100, ByteRange(0, 99)),
    ("bytes=0-0", 100, ByteRange(0, 0)),
    ("bytes=10-19", 100, ByteRange(10, 19)),
    ("bytes=90-200", 100, ByteRange(90, 99)),
    ("bytes=-10", 100, ByteRange(90, 99)),
    ("bytes=-1000", 100, ByteRange(0, 99)),
    ("BYTES = 5 - 6", 100, ByteRange(5, 6)),
    ("bytes=20-10", 100, None),  # invalid: ignored
    ("bytes=0-1,5-6", 100, None),  # several ranges: the whole object
    ("items=0-1", 100, None),
    ("bytes=-", 100, None),
    ("bytes=abc", 100, None),
]


@pytest.mark.parametrize(("header", "size", "expected"), RANGES)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


UNSATISFIABLE = [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=-5", 0)]


@pytest.mark.parametrize(("header", "size"), UNSATISFIABLE)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


@given(st.integers(0, 10_000), st.integers(0, 20_000), st.integers(0, 20_000))
def test_a_range_stays_inside_the_object(size: int, a: int, b: int) -> None:
    for header in (f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b}"):
        try:
            got = parse_range(header, size)
        except Unsatisfiable:
            continue
        if got is not None:
            assert 0 <= got.start <= got.end < size
            assert got.content_range(size) == f"bytes {got.start}-{got.end}/{size}"


DISPOSITIONS = [
    ("dawn.wav", "attachment; filename=\"dawn.wav\"; filename*=UTF-8''dawn.wav"),
    ("chant é.wav", "attachment; filename=\"chant e.wav\"; filename*=UTF-8''chant%20%C3%A9.wav"),
    ('a"b;c\r\n.wav', "attachment; filename=\"a_b_c__.wav\"; filename*=UTF-8''a%22b%3Bc__.wav"),
    ("../../etc/passwd", "attachment; filename=\"_.._etc_passwd\"; filename*=UTF-8''.._.._etc_passwd"),
    ("evil\u202egnp.wav", "attachment; filename=\"evil_gnp.wav\"; filename*=UTF-8''evil_gnp.wav"),
    (os.fsdecode(b"rec\xff.wav"), "attachment; filename=\"rec_.wav\"; filename*=UTF-8''rec%EF%BF%BD.wav"),
    ("日本.wav", "attachment; filename=\"__.wav\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.wav"),
    ("", "attachment; filename=\"recording\"; filename*=UTF-8''"),
]


@pytest.mark.parametrize(("name", "expected"), DISPOSITIONS)
def test_content_disposition(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


@given(st.text())
def test_content_disposition_is_always_a_safe_header(name: str) -> None:
    value = content_disposition(name)
    value.encode("latin-1")  # an HTTP header value
    assert all(32 <= ord(c) < 127 for c in value)


@pytest.mark.parametrize(
    ("original", "file", "key", "expected"),
    [
        (b"dawn.wav", "other.wav", "p/a/dawn.flac", "dawn.wav"),
        (b"rec\xff.wav", "", "p/a/rec___1234.flac", os.fsdecode(b"rec\xff.wav")),
        (None, "/home/pi/spool/owl.wav", "p/a/owl.flac", "owl.wav"),
        (None, "", "p/a/owl.flac", "owl.wav"),
        (None, "", "p/a/OWL.FLAC", "OWL.WAV"),
        (None, "", "p/a/notes.txt", "notes.txt"),
    ],
)
def test_download_name(original: bytes | None, file: str, key: str, expected: str) -> None:
    assert download_name(original, file, key) == expected


@pytest.mark.parametrize(
    ("codec", "key", "expected"),
    [
        ("flac", "a/b.flac", "audio/flac"),
        ("", "a/b.flac", "audio/flac"),
        ("raw", "a/b.wav", "audio/wav"),
        ("raw", "a/b.WAV", "audio/wav"),
        ("raw", "a/b.flac", None),  # a raw object named .flac is not ours to decode
        ("raw", "a/b.txt", None),
        ("opus", "a/b.opus", None),
        ("zstd", "a/b/f.wav__0123.zst", None),  # a zstd object's original name is not known: not played
    ],
)
def test_play_type(codec: str, key: str, expected: str | None) -> None:
    assert play_type(codec, key) == expected


def test_transfer_slots_per_user_and_in_all() -> None:
    slots = TransferSlots(per_user=2, total=3)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert not slots.acquire("a")
    assert slots.acquire("b")
    assert not slots.acquire("c")  # three in all
    slots.release("a")
    assert slots.acquire("c")
    assert (slots.held("a"), slots.held("b"), slots.held("c"), slots.held()) == (1, 1, 1, 3)
    for user in ("a", "b", "c"):
        slots.release(user)
    assert slots.held() == 0


NAME = cache_name("k", "ab" * 32, "", 1024, 256)


def test_cache_names_differ_by_every_input() -> None:
    variants = [("k", "s", "e", 1, 2), ("k2", "s", "e", 1, 2), ("k", "s2", "e", 1, 2), ("k", "s", "e2", 1, 2),
                ("k", "s", "e", 2, 2), ("k", "s", "e", 1, 3)]  # fmt: skip
    names = {cache_name(*args) for args in variants}
    assert len(names) == 6


def test_the_disk_cache_keeps_at_most_its_size(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c", max_bytes=2500)
    names = [cache_name(str(i), "", "", 1, 1) for i in range(5)]
    for i, name in enumerate(names):
        cache.put(name, bytes([i]) * 1000)
        os.utime(cache._path(name), ns=(i * 10**9, i * 10**9))  # a clear order of use
    assert cache.total_bytes() <= 2500
    assert cache.get(names[0]) is None
    assert cache.get(names[4]) == bytes([4]) * 1000
    with pytest.raises(ValueError):
        cache.get("../../etc/passwd")


def test_one_computation_per_recording_at_a_time(tmp_path: Path) -> None:
    service = SpectrogramService(DiskCache(tmp_path, 1 << 20), workers=2, max_pending=3, timeout_s=60)
    release = threading.Event()
    calls: list[float] = []

    def compute(deadline: float) -> bytes:
        calls.append(deadline)
        release.wait(60)
        return b"png"

    futures = [service.get(NAME, compute) for _ in range(5)]
    assert len({id(f) for f in futures}) == 1
    others = [service.get(cache_name(str(i), "", "", 1, 1), compute) for i in range(2)]
    with pytest.raises(Busy):
        service.get(cache_name("more", "", "", 1, 1), compute)
    release.set()
    assert [f.result(60) for f in futures + others] == [b"png"] * 7
    assert len(calls) == 3
    assert service.get(NAME, compute).result(0) == b"png"  # from the cache now
    assert len(calls) == 3
    assert service.computed == 3
    service.close()


def test_a_failed_computation_is_not_cached(tmp_path: Path) -> None:
    service = SpectrogramService(DiskCache(tmp_path, 1 << 20), workers=1, max_pending=2, timeout_s=60)
    attempts: list[int] = []

    def flaky(_deadline: float) -> bytes:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("S3 went away")
        return b"png"

    with pytest.raises(RuntimeError):
        service.get(NAME, flaky).result(60)
    assert service.get(NAME, flaky).result(60) == b"png"
    assert len(attempts) == 2
    service.close()


@pytest.mark.parametrize(
    ("codec", "key", "file", "expected"),
    [
        ("zstd", "a/b/f.wav__0123.zst", "f ü.wav", "audio/wav"),  # a float WAV stored as zstd: served decompressed
        ("zstd", "a/b/f.WAVE__0123.zst", "F.WAVE", "audio/wav"),
        ("zstd", "a/b/notes.txt.zst", "notes.txt", None),  # not audio
        ("flac", "a/b/f.flac", "f.wav", "audio/flac"),
        ("raw", "a/b/f.wav", "f.wav", "audio/wav"),
    ],
)
def test_what_plays_and_has_a_spectrogram(codec: str, key: str, file: str, expected: str | None) -> None:
    assert play_type(codec, key, file) == expected
    assert unpacked(codec) is (codec == "zstd")  # served decompressed; decided from the codec, once
