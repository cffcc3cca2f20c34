"""``fleet_audio.ahead`` and ``fleet_audio.headstart``: a file's head encoded in a thread before it is read gives
the same bytes as reading it in turn; the thread stops at its limit and is stopped by ``close``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_audio import source
from fleet_audio.ahead import Ahead
from fleet_audio.errors import RecordingRejected
from fleet_audio.headstart import HeadStart
from fleet_audio.source import FlacSource, ObjectSource
from tests.corpus import write_wav
from tests.waiting import wait_for


class Blocks:
    """An iterator of ``n`` 10-byte blocks that records which thread pulled each one; fails at ``fail_at``."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.pulled_by: list[str] = []
        self.closed = False
        self.gen = self._gen()

    def _gen(self) -> Iterator[bytes]:
        try:
            for i in range(self.n):
                self.pulled_by.append(threading.current_thread().name)
                if i == self.fail_at:
                    raise ValueError(f"block {i} is bad")
                yield bytes([i]) * 10
        finally:
            self.closed = True


def expected(n: int) -> list[bytes]:
    return [bytes([i]) * 10 for i in range(n)]


@pytest.mark.parametrize(("n", "limit", "ahead"), [(10, 35, 4), (3, 35, 3), (10, 0, 0)])
def test_the_thread_reads_up_to_its_limit_and_the_reader_the_rest(n: int, limit: int, ahead: int) -> None:
    blocks = Blocks(n)
    early = Ahead(blocks.gen, limit, name="ahead-test")
    early._thread.join(60)  # the thread stops by itself at the limit
    assert blocks.pulled_by == ["ahead-test"] * ahead
    assert list(early) == expected(n)
    assert blocks.pulled_by[ahead:] == [threading.current_thread().name] * (n - ahead)
    with pytest.raises(RuntimeError):
        iter(early).__next__()  # once


@pytest.mark.parametrize("fail_at", [1, 6])  # in the thread's head, in the reader's rest
def test_an_error_reaches_the_reader_where_the_stream_broke(fail_at: int) -> None:
    got: list[bytes] = []
    early = Ahead(Blocks(10, fail_at).gen, 35)
    with pytest.raises(ValueError, match=f"block {fail_at} is bad"):
        got.extend(early)  # keeps what came before the error
    assert got == expected(fail_at)


def test_close_stops_the_thread_and_closes_the_blocks() -> None:
    release = threading.Event()

    def slow() -> Iterator[bytes]:
        while True:
            assert release.wait(60)
            yield b"x"

    blocks = slow()
    early = Ahead(blocks, 1 << 30)
    release.set()
    early.close()
    assert not early._thread.is_alive()
    assert next(blocks, None) is None  # closed


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("ahead") / "r.wav", seconds=20, rate=48000, channels=2, kind="field")


def whole_object(src: ObjectSource) -> bytes:
    body = b"".join(src.body())
    return src.header() + body[src.header_size :] if src.header_size else body


def test_a_head_start_gives_the_same_object_and_sha256(wav: Path) -> None:
    plain = source.open_source(wav, 5)
    want, want_sha = whole_object(plain), plain.original_sha256()
    plain.close()
    head = HeadStart(wav, 5, lambda src: 1 << 20)
    early = head.open_source(wav, 5)
    assert isinstance(early, FlacSource)
    wait_for(lambda: early.encoded_bytes > 0, timeout=60)  # encoding before anyone read a byte
    assert whole_object(early) == want
    assert early.original_sha256() == want_sha
    assert early.encoded_bytes == wav.stat().st_size - 44  # the encode-rate sample covers the whole file
    again = head.open_source(wav, 5)  # handed over once: now opened as usual
    assert again is not early
    early.close()
    again.close()
    head.close()


def test_another_level_or_file_opens_as_usual_and_close_stops_the_unused_head(wav: Path, tmp_path: Path) -> None:
    other = write_wav(tmp_path / "other.wav", seconds=1, kind="voice")
    head = HeadStart(wav, 5, lambda src: 1 << 30)
    early = head._early
    assert isinstance(early, FlacSource)
    src = head.open_source(other, 5)
    assert src.fingerprint.inode == other.stat().st_ino
    assert head._early is early  # still waiting for its file
    src.close()
    head.close()
    assert head._early is None
    assert early._ahead is not None
    assert not early._ahead._thread.is_alive()
    head = HeadStart(wav, 5, lambda src: 1 << 30)
    early = head._early
    at_8 = head.open_source(wav, 8)  # a resumed upload keeps its level: the early one is closed
    assert isinstance(at_8, FlacSource)
    assert at_8.compression_level == 8
    assert isinstance(early, FlacSource)
    assert early._ahead is not None
    assert not early._ahead._thread.is_alive()
    at_8.close()


def test_a_file_that_cannot_be_opened_early_fails_when_the_engine_opens_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    head = HeadStart(empty, 5, lambda src: 1 << 20)
    assert head._early is None
    with pytest.raises(RecordingRejected, match="empty file"):
        head.open_source(empty, 5)
