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
from edgefleet.localservices import SeaweedS3
from fleet_audio.restore import verify_object
from fleet_base.s3settings import S3Settings
from tests.integration.edge_agent.transfer.helpers import PART
from tests.integration.edge_agent.transfer.test_faults import Make

RATE = 2 * 1024 * 1024  # bytes/s the middlebox passes on, all connections together
STALL_S = 2.0  # two 5 MiB parts sharing 2 MiB/s need 5 s after their last byte was taken
CHUNK = 16 * 1024


class BufferingMiddlebox:
    """Accepts everything a client sends at once (into memory, without bound) and forwards it to the server at
    ``rate`` bytes/s shared by all its connections; the server's answers go back at once."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target = target
        self.rate = rate
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._next_free = 0.0  # when the shared link is free for the next chunk
        self.taken = 0  # bytes read from clients
        self.forwarded = 0  # bytes passed on to the server
        self.held_most = 0  # the most bytes held at once
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

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
            while data := client.recv(256 * 1024):
                with ready:
                    held.append(data)
                    ready.notify()
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
                data = held.popleft()
            if not data:
                with contextlib.suppress(OSError):
                    upstream.close()
                return
            for i in range(0, len(data), CHUNK):
                piece = data[i : i + CHUNK]
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
