"""``RestoreStream``: the rebuild's bytes in order, the tail held back until the rebuild's check has passed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.media import DownloadFailed, RestoreStream
from fleet_audio.errors import RestoreError


def writer(pieces: list[bytes], fail: bool) -> Callable[[Callable[[bytes], None]], None]:
    def run(write: Callable[[bytes], None]) -> None:
        for piece in pieces:
            write(piece)
        if fail:
            raise RestoreError("rebuilt 10 bytes sha256 ..., the original had ...")

    return run


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 128))
@settings(max_examples=25, deadline=None)
def test_everything_arrives_in_order_when_the_check_passes(pieces: list[bytes], piece: int) -> None:
    stream = RestoreStream(writer(pieces, fail=False), piece=piece, depth=2)
    blocks = list(stream)
    assert b"".join(blocks) == b"".join(pieces)
    assert all(len(b) <= piece for b in blocks[:-1])


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20), st.integers(1, 128))
@settings(max_examples=25, deadline=None)
def test_a_failed_check_never_delivers_the_whole_file(pieces: list[bytes], piece: int) -> None:
    stream = RestoreStream(writer(pieces, fail=True), piece=piece, depth=2)
    received = bytearray()
    with pytest.raises(DownloadFailed, match="sha256"):  # noqa: PT012
        for block in stream:
            received += block
    whole = b"".join(pieces)
    assert len(received) < len(whole)
    assert whole.startswith(bytes(received))
    assert isinstance(stream.failure, RestoreError)


def test_closing_stops_the_rebuild() -> None:
    written: list[int] = []

    def endless(write: Callable[[bytes], None]) -> None:
        while True:
            write(b"x" * 100)
            written.append(1)

    stream = RestoreStream(endless, piece=100, depth=1)
    next(iter(stream))
    stream.close()
    stream._thread.join(timeout=60)
    assert not stream._thread.is_alive()
    assert isinstance(stream.failure, DownloadFailed)
