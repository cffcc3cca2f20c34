"""The wire against SeaweedFS through tests/faultproxy.py: a bandwidth cap paces the bytes as they are written
(measured at the proxy, per one-second window), and a slow link that keeps moving is never a stall. Then the
wire alone against a tiny local server: a peer that stops reading, or never answers, is a stall; a slow one
that keeps reading is not."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import urllib3

from edge_agent.engine.limits import Limits, MiB
from edge_agent.transfer import wire
from edgefleet.localservices import SeaweedS3
from tests.faultproxy import FaultProxy
from tests.integration.transfer.helpers import PART, settings_via
from tests.integration.transfer.test_faults import REPO, Make

pytestmark = pytest.mark.integration


def max_in_window(log: list[tuple[float, int]], span: float) -> tuple[int, float]:
    """The most bytes that arrived in any window [t, t + span), and where it starts (times ascend)."""
    best, at, inside, lo = 0, 0.0, 0, 0
    for t, n in log:
        inside += n
        while log[lo][0] <= t - span:
            inside -= log[lo][1]
            lo += 1
        if inside > best:
            best, at = inside, log[lo][0]
    return best, at


@pytest.fixture(scope="module")
def raw16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 MiB that FLAC cannot hold (not a WAV): four raw parts of 5, 5, 5 and 1 MiB."""
    path = tmp_path_factory.mktemp("raw") / "raw16.bin"
    path.write_bytes(random.Random(16).randbytes(16 * MiB))
    return path


def test_the_cap_paces_the_wire_over_every_second(
    s3_server: SeaweedS3, proxy: FaultProxy, raw16: Path, tmp_path: Path
) -> None:
    """1 MiB/s shared by four parts in flight: over any 1 s window the proxy sees at most 10 % above the cap
    (a whole part charged at once and sent at link speed would show 5 MiB in a second). ``edgefleet upload``
    runs in its own process, so the proxy's threads that time the bytes do not wait for the engine's."""
    cap = MiB
    env = {**os.environ, **s3_server.env(), "EDGEFLEET_S3_ENDPOINT": f"http://{proxy.address}"}
    cmd = [
        sys.executable, "-m", "edgefleet.cli", "upload", str(raw16), "--prefix", f"cap/{tmp_path.name}",
        "--state-dir", str(tmp_path / "state"), "--concurrency", "4", "--part-size", str(PART),
        "--compression-level", "-1", "--bandwidth", str(cap),
    ]  # fmt: skip
    log = proxy.record_up()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sum(n for _, n in log) >= 16 * MiB
    most, at = max_in_window(log, 1.0)
    assert most <= 1.1 * cap, f"{most / MiB:.3f} MiB in the second from {at - log[0][0]:.2f} s"
    took = log[-1][0] - log[0][0]
    assert took >= (16 * MiB - 1.1 * cap) / cap  # the whole run: never above the cap on average either
    assert "retry" not in done.stderr


def test_a_slow_link_that_keeps_moving_is_not_a_stall(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, raw16: Path
) -> None:
    """Each 5 MiB part takes ~10 s at 512 KiB/s, five times the stall timeout: nothing is cut or sent twice
    (the old whole-request timeout cut every such part)."""
    proxy.set_rate(512 * 1024)  # per connection
    limits = Limits(concurrency=2, part_size=PART, compression_level=-1)
    engine, _ = make_engine(settings_via(s3_server, proxy), limits, stall_timeout_s=2.0)
    engine.enqueue(raw16)
    report = engine.run_until_idle()
    assert report.ok, report
    stats = engine.stats()
    assert stats.retries_total == 0
    assert proxy.bytes_up < 16 * MiB + 64 * 1024  # the payload once, plus request headers
    assert stats.throughput_bps > 0  # measured from what the link acknowledged
    assert stats.backlog_eta_s == 0.0  # nothing queued


# -- the wire alone, against a tiny local HTTP server ------------------------------------------------------
class TinyServer:
    """Accepts one connection at a time; ``behaviour(conn)`` decides what to do with the request."""

    def __init__(self, behaviour: Callable[[socket.socket], None], rcvbuf: int = 64 * 1024) -> None:
        self._behaviour = behaviour
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # acks follow what is read
        self.port = self._server.getsockname()[1]
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._server.accept()
            with conn:
                self._behaviour(conn)
                self.done.wait(60)

    def close(self) -> None:
        self.done.set()
        self._server.close()


def read_request(conn: socket.socket, body: int, chunk: int = 64 * 1024, pause_s: float = 0.0) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(1)
    left = body
    while left:
        got = conn.recv(min(chunk, left))
        assert got
        left -= len(got)
        time.sleep(pause_s)


def put(port: int, body: bytes, stall_timeout_s: float) -> tuple[urllib3.BaseHTTPResponse | Exception, wire.Watch]:
    manager = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=stall_timeout_s, read=stall_timeout_s), retries=urllib3.Retry(0)
    )
    manager.pool_classes_by_scheme = dict(wire.POOL_CLASSES)
    with wire.watching(stall_timeout_s) as watch:
        try:
            return manager.request("PUT", f"http://127.0.0.1:{port}/x", body=body), watch
        except urllib3.exceptions.HTTPError as exc:  # urllib3 wraps the watch's Stalled (S3Store reads the watch)
            return exc, watch


BODY = random.Random(5).randbytes(8 * MiB)


@pytest.mark.parametrize("reads", [1 * MiB, len(BODY)], ids=["stops reading", "never answers"])
def test_a_peer_that_stops_is_a_stall(reads: int) -> None:
    server = TinyServer(lambda conn: read_request(conn, reads))
    started = time.monotonic()
    try:
        failed, watch = put(server.port, BODY, stall_timeout_s=1.0)
    finally:
        server.close()
    assert isinstance(failed, urllib3.exceptions.MaxRetryError)
    assert watch.fault is not None
    assert watch.fault.startswith("stalled: nothing written or acknowledged for 1 s")
    assert watch.acked <= reads + 64 * 1024 + 2 * 64 * 1024  # what was read, its buffer, and the headers
    assert time.monotonic() - started < 30


def test_a_slow_peer_that_keeps_reading_is_no_stall() -> None:
    """8 MiB read at ~2 MiB/s: 4 s, four stall timeouts, and never 1 s without a byte acknowledged."""

    def slow(conn: socket.socket) -> None:
        read_request(conn, len(BODY), chunk=64 * 1024, pause_s=0.03)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = TinyServer(slow)
    started = time.monotonic()
    try:
        response, watch = put(server.port, BODY, stall_timeout_s=1.0)
    finally:
        server.close()
    assert isinstance(response, urllib3.BaseHTTPResponse), response
    assert (response.status, response.data) == (200, b"ok")
    assert watch.fault is None
    assert watch.acked == watch.written > len(BODY)
    assert time.monotonic() - started > 1.0
