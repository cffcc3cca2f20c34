"""The transcoder's pure parts: the header-last split, the new key, the configuration's bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.transcoder.config import parse_config
from controller.transcoder.parts import split
from controller.transcoder.work import target_key
from fleet_base.configfile import ConfigError

S3 = {"endpoint": "http://127.0.0.1:9000", "access_key": "a", "secret_key": "s", "bucket": "b"}


@given(
    blocks=st.lists(st.binary(max_size=300), max_size=30),
    header=st.binary(max_size=50),
    part_size=st.integers(1, 200),
)
def test_parts_put_together_by_number_are_the_header_and_the_body(
    blocks: list[bytes], header: bytes, part_size: int
) -> None:
    calls: list[int] = []

    def final_header() -> bytes:
        calls.append(len(parts))  # only once every body part was handed out
        return header

    parts: list[tuple[int, bytes]] = []
    for part in split(blocks, final_header, part_size):
        parts.append(part)
    numbers = [n for n, _ in parts]
    assert numbers == [*range(2, len(parts) + 1), 1]  # part 1 last, the others in order
    assert calls == [len(parts) - 1]
    assert b"".join(data for _, data in sorted(parts)) == header + b"".join(blocks)
    body = b"".join(blocks)
    first = dict(parts)[1]
    assert len(first) == len(header) + min(part_size, len(body))
    assert all(len(data) == part_size for n, data in parts[:-2])  # all full but the last body part


def test_a_part_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        list(split([b"x"], lambda: b"", 0))


@pytest.mark.parametrize(
    ("raw_key", "metadata", "kind", "expected"),
    [
        ("p/pi-1/2026/06/01/dawn.wav", {"edgefleet-original-name": "dawn.wav"}, "flac", "p/pi-1/2026/06/01/dawn.flac"),
        ("p/pi-1/2026/06/01/dawn.wav", {}, "flac", "p/pi-1/2026/06/01/dawn.flac"),
        ("p/pi-1/2026/06/01/bat.wav", {"edgefleet-original-name": "bat.wav"}, "zstd", "p/pi-1/2026/06/01/bat.wav.zst"),
        # a name that was made safe for the raw key: the new key comes from the original bytes, as on the agent
        ("d/rec_x__0123456789abcdef.wav", {"edgefleet-original-name": "rec%20x.wav"}, "flac", "d/rec_x__"),
    ],
)
def test_the_new_key_is_the_one_the_agent_would_have_used(
    raw_key: str, metadata: dict[str, str], kind: str, expected: str
) -> None:
    got = target_key(raw_key, metadata, kind)  # type: ignore[arg-type]
    assert got.startswith(expected)
    assert got != raw_key


@pytest.mark.parametrize(
    "bad",
    [{"part_size_mb": 4}, {"lease_s": 1}, {"compression_level": 9}, {"worker_id": "a b"}, {"max_attempts": 0}],
)
def test_settings_out_of_bounds_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_config({"s3": S3, **bad})


def test_the_environment_overrides_the_database_and_s3() -> None:
    config = parse_config({"s3": S3}, {"EDGEFLEET_DATABASE_URL": "sqlite:///x.db", "EDGEFLEET_S3_BUCKET": "other"})
    assert (config.database_url, config.s3.bucket, config.part_size) == ("sqlite:///x.db", "other", 8 << 20)
