"""Behind a buffering middlebox (a satellite link's performance-enhancing proxy): it takes every byte of a
request at once, so the uploader's socket never waits, and passes them on at the link's pace. The wait for the
answer then lasts as long as the link needs for the part: longer than the stall timeout here. The parts must
still complete, once each (their answer is awaited until the part's deadline, not the stall timer), and the
measured link rate must be the link's, not the speed at which the middlebox took the bytes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from edge_agent.engine.limits import Limits
from edge_agent.engine.linkguard import CARRY_FRACTION
from edge_agent.transfer.context import RetryNotice
from edge_agent.transfer.engine import Engine
from edgefleet.localservices import SeaweedS3
from fleet_audio.restore import verify_object
from fleet_base.s3settings import S3Settings
from tests.integration.edge_agent.transfer.helpers import PART
from tests.integration.edge_agent.transfer.test_faults import Make, in_background, wait_for

RATE = 2 * 1024 * 1024  # bytes/s the middlebox passes on, all connections together
STALL_S = 2.0  # two 5 MiB parts sharing 2 MiB/s need 5 s after their last byte was taken
CHUNK = 16 * 1024
RCVBUF = 64 * 1024  # the receive buffer of a middlebox that holds little


class BufferingMiddlebox:
    """Accepts everything a client sends at once (into memory) and forwards it to the server at ``rate`` bytes/s
    shared by all its connections; the server's answers go back at once.

    With ``holds`` it holds at most that many bytes per connection: when they are in, it stops reading (its
    receive buffer is a small ``RCVBUF``, so its TCP window closes) and reads again only once it has passed all
    but ``holds // 8`` of them on, as a middlebox smaller than a part does; the client then sees nothing
    acknowledged for ``7/8 holds / rate`` seconds at a time while the link is busy with its bytes. ``freeze()``
    stops it taking and passing on anything (a dead path behind a live TCP peer) until ``thaw()``."""

    def __init__(self, target: tuple[str, int], rate: int, holds: int | None = None) -> None:
        self.target = target
        self.rate = rate
        self.holds = holds
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if holds is not None:  # set before listening: the accepted sockets inherit it
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen()
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._next_free = 0.0  # when the shared link is free for the next chunk
        self._frozen = threading.Event()
        self.taken = 0  # bytes read from clients
        self.forwarded = 0  # bytes passed on to the server
        self.held_most = 0  # the most bytes held at once
        self.longest_closed_s = 0.0  # the longest time it did not read while a client had more to send
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def _thawed(self) -> None:
        while self._frozen.is_set():
            time.sleep(0.05)  # polling a test switch, not waiting for a result

    def _held(self, held: deque[bytes]) -> int:
        return sum(len(d) for d in held)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            held: deque[bytes] = deque()
            ready = threading.Condition()
            threading.Thread(target=self._take, args=(client, held, ready), daemon=True).start()
            threading.Thread(target=self._forward, args=(upstream, held, ready), daemon=True).start()
            threading.Thread(target=self._answer, args=(upstream, client), daemon=True).start()

    def _take(self, client: socket.socket, held: deque[bytes], ready: threading.Condition) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(256 * 1024 if self.holds is None else min(CHUNK, self.holds)):
                self._thawed()
                with ready:
                    held.append(data)
                    ready.notify()
                    if self.holds is not None and self._held(held) >= self.holds:
                        closed = time.monotonic()
                        ready.wait_for(lambda: self._held(held) <= self.holds // 8)  # type: ignore[operator]
                        self.longest_closed_s = max(self.longest_closed_s, time.monotonic() - closed)
                with self._lock:
                    self.taken += len(data)
                    self.held_most = max(self.held_most, self.taken - self.forwarded)
        with ready:
            held.append(b"")  # the client is gone
            ready.notify()

    def _forward(self, upstream: socket.socket, held: deque[bytes], ready: threading.Condition) -> None:
        while True:
            with ready:
                ready.wait_for(lambda: bool(held))
                data = held[0]
            if not data:
                with contextlib.suppress(OSError):
                    upstream.close()
                return
            for i in range(0, len(data), CHUNK):
                piece = data[i : i + CHUNK]
                self._thawed()
                with self._lock:  # one shared link: each chunk takes its turn
                    start = max(time.monotonic(), self._next_free)
                    self._next_free = start + len(piece) / self.rate
                    due = self._next_free
                time.sleep(max(0.0, due - time.monotonic()))  # pacing the link, not waiting for a condition
                try:
                    upstream.sendall(piece)
                except OSError:
                    return
                with self._lock:
                    self.forwarded += len(piece)
            with ready:
                held.popleft()  # passed on: room for the client's next bytes
                ready.notify_all()

    def _answer(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(64 * 1024):
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.close()

    def __enter__(self) -> BufferingMiddlebox:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for s in [self._server, *self._sockets]:
            with contextlib.suppress(OSError):
                s.close()


def test_parts_complete_once_each_behind_a_middlebox_that_buffers_them(
    s3_server: SeaweedS3, make_engine: Make, wavs: dict[str, Path]
) -> None:
    path = wavs["mid"]  # ~17 MB, sent raw: four parts
    with BufferingMiddlebox((s3_server.host, s3_server.port), RATE) as box:
        settings = S3Settings(
            f"http://127.0.0.1:{box.port}", s3_server.access_key, s3_server.secret_key, s3_server.bucket
        )
        engine, _ = make_engine(
            settings,
            Limits(concurrency=2, part_size=PART, compression_level=-1),
            stall_timeout_s=STALL_S,
            give_up_after_s=120.0,  # a ceiling: without the fix every part is cut and sent again forever
        )
        engine.enqueue(path)
        started = time.monotonic()
        report = engine.run_until_idle()
        took = time.monotonic() - started
        stats = engine.stats()
    assert report.ok, report
    stored = report.results[0].stored_bytes
    assert box.held_most >= PART  # the middlebox did hold whole parts: their answers came seconds later
    assert took >= stored / RATE * 0.95  # ... at the link's pace
    assert stats.retries_total == 0  # no part was cut while its answer was on its way
    assert box.forwarded < stored + 64 * 1024  # every byte once (plus HTTP headers and the small requests)
    # the rate is what reached the server, not the speed at which the middlebox took the bytes
    assert 0.5 * RATE < stats.throughput_bps < 1.3 * RATE, stats
    assert verify_object(s3_server.client(), s3_server.bucket, report.results[0].key, path).matches


SMALL_RATE = 1024 * 1024  # the link behind the small middlebox
HOLDS = 3 * 1024 * 1024  # smaller than a part: its window closes for 7/8 * 3 MiB / 1 MiB/s = 2.6 s at a time
SMALL_STALL_S = 1.0


def _behind_small_box(
    s3_server: SeaweedS3, make_engine: Make, box: BufferingMiddlebox, give_up_after_s: float
) -> tuple[Engine, list[tuple[float, RetryNotice]]]:
    settings = S3Settings(f"http://127.0.0.1:{box.port}", s3_server.access_key, s3_server.secret_key, s3_server.bucket)
    engine, _ = make_engine(
        settings,
        Limits(concurrency=1, part_size=PART, compression_level=-1),
        stall_timeout_s=SMALL_STALL_S,
        give_up_after_s=give_up_after_s,
    )
    notices: list[tuple[float, RetryNotice]] = []  # (when, notice)
    engine.set_retry_callback(lambda n: notices.append((time.monotonic(), n)))
    return engine, notices


def test_a_middlebox_smaller_than_a_part_that_closes_its_window_is_no_stall(
    s3_server: SeaweedS3, make_engine: Make, wavs: dict[str, Path]
) -> None:
    """The zero-window case: the middlebox takes 3 MiB of each 5 MiB part, closes its TCP window and opens it
    only after passing most of them on, so nothing is acknowledged for 2.6 s at a time, more than twice the
    stall timeout, while the link is busy with the part. Without the carry rule every part is cut at its first
    closed window (and again on each retry); with it the parts go once each."""
    path = wavs["mid"]  # ~17 MB, sent raw: four parts of 5 MiB, one at a time
    with BufferingMiddlebox((s3_server.host, s3_server.port), SMALL_RATE, holds=HOLDS) as box:
        engine, notices = _behind_small_box(s3_server, make_engine, box, give_up_after_s=60.0)
        engine.enqueue(path)
        report = engine.run_until_idle()
        stats = engine.stats()
    assert report.ok, (report, [n.error for _, n in notices])
    stored = report.results[0].stored_bytes
    assert box.longest_closed_s > 2 * SMALL_STALL_S  # the window really was closed longer than the stall timeout
    assert box.held_most <= HOLDS + CHUNK  # ... by a middlebox holding less than a part
    assert stats.retries_total == 0, [n.error for _, n in notices]
    assert box.forwarded < stored + 64 * 1024  # every byte once (plus HTTP headers and the small requests)
    assert verify_object(s3_server.client(), s3_server.bucket, report.results[0].key, path).matches


def test_a_dead_path_behind_a_live_peer_is_still_cut_within_the_bound(
    s3_server: SeaweedS3, make_engine: Make, wavs: dict[str, Path]
) -> None:
    """Once the link is measured, the middlebox stops taking and passing on anything (its TCP stack still
    answers, with a zero window): the part on the wire is cut by the stall timer no later than the bound of
    the rule (stall timeout + the part's bytes at half the measured rate, from the request's start), then sent
    again once the path is back."""
    path = wavs["mid"]
    with BufferingMiddlebox((s3_server.host, s3_server.port), SMALL_RATE, holds=HOLDS) as box:
        engine, notices = _behind_small_box(s3_server, make_engine, box, give_up_after_s=120.0)
        engine.enqueue(path)
        froze: list[float] = []

        def freeze_in_the_second_part() -> None:
            wait_for(lambda: engine.stats().throughput_bps > 0, 60, "the link to be measured")
            wait_for(lambda: box.forwarded > PART + 1024 * 1024, 60, "the second part to be on its way")
            froze.append(time.monotonic())
            box.freeze()
            wait_for(lambda: bool(notices), 120, "the dead path to be cut")
            box.thaw()

        t = in_background(freeze_in_the_second_part)
        report = engine.run_until_idle()
        t.join()
        rate = engine.stats().throughput_bps
    assert report.ok, report
    cut = [at for at, n in notices if n.error and "stalled" in n.error]
    assert cut, [n.error for _, n in notices]
    # from the freeze: at least the stall timeout; at most the bound counted from the part's start (before the
    # freeze), with room for a busy machine
    bound = SMALL_STALL_S + (PART + 64 * 1024) / (CARRY_FRACTION * rate)
    waited = cut[0] - froze[0]
    assert SMALL_STALL_S <= waited <= 1.5 * bound + 5, (waited, bound)
    assert verify_object(s3_server.client(), s3_server.bucket, report.results[0].key, path).matches
