"""The wire against SeaweedFS through tests/faultproxy.py: a bandwidth cap paces the bytes as they are written
(measured at the proxy, per one-second window), and a slow link that keeps moving is never a stall. Then the
wire alone against a tiny local server: a peer that stops reading, or never answers, is a stall; a slow one
that keeps reading is not."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import urllib3
from urllib3.connection import HTTPConnection

from edge_agent.engine.limits import Limits, MiB
from edge_agent.transfer import wire
from edgefleet.localservices import SeaweedS3
from tests.faultproxy import FaultProxy
from tests.integration.dashboard.test_tls import make_certificates
from tests.integration.edge_agent.transfer.helpers import PART, settings_via
from tests.integration.edge_agent.transfer.test_faults import REPO, Make
from tests.waiting import wait_for

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
    """Each 5 MiB part takes ~10 s at 512 KiB/s, twice the stall timeout: nothing is cut or sent twice (a
    whole-request timeout of that length would cut every such part). The timeout is not shorter so that a
    server slowed by a busy machine, answering a few seconds after the part's last byte, is no stall."""
    proxy.set_rate(512 * 1024)  # per connection
    limits = Limits(concurrency=2, part_size=PART, compression_level=-1)
    engine, _ = make_engine(settings_via(s3_server, proxy), limits, stall_timeout_s=5.0)
    engine.enqueue(raw16)
    report = engine.run_until_idle()
    assert report.ok, report
    stats = engine.stats()
    assert stats.retries_total == 0
    assert proxy.bytes_up < 16 * MiB + 64 * 1024  # the payload once, plus request headers
    assert stats.throughput_bps > 0  # measured from what the link acknowledged
    assert stats.backlog_eta_s == 0.0  # nothing queued


def test_a_stop_cancels_the_parts_on_the_wire_and_the_upload_resumes(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, raw16: Path
) -> None:
    """Two 5 MiB parts share 256 KiB/s (40 s each): a stop does not wait for them, the journal keeps the
    upload, and the next engine resumes it."""
    limits = Limits(concurrency=2, part_size=PART, compression_level=-1, bandwidth_bps=256 * 1024)
    engine, _ = make_engine(settings_via(s3_server, proxy), limits)
    engine.enqueue(raw16)
    engine.start()
    wait_for(lambda: proxy.bytes_up > 512 * 1024, 60, "parts on the wire")
    started = time.monotonic()
    engine.stop(timeout=60)
    assert time.monotonic() - started < 10
    engine.close()
    again, rec = make_engine(settings_via(s3_server, proxy), replace(limits, bandwidth_bps=0))
    report = again.run_until_idle()
    assert report.ok, report
    assert rec.kinds() == ["upload_resumed", "upload_completed"]


# -- the wire alone, against a tiny local HTTP(S) server ---------------------------------------------------
@dataclass(frozen=True)
class Scheme:
    name: str  # http or https
    server: ssl.SSLContext | None = None
    ca: str | None = None


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest, tmp_path: Path) -> Scheme:
    """Plain and TLS (TLS 1.3 sends session tickets after the handshake: readable long before the answer)."""
    if request.param == "http":
        return Scheme("http")
    ca, cert, key = make_certificates(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return Scheme("https", server, str(ca))


class TinyServer:
    """Serves one connection; ``behaviour(conn)`` decides what to do with the requests on it."""

    def __init__(self, scheme: Scheme, behaviour: Callable[[socket.socket], None], rcvbuf: int = 64 * 1024) -> None:
        self._scheme = scheme
        self._behaviour = behaviour
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # acks follow what is read
        self.port = self._server.getsockname()[1]
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._server.accept()
            if self._scheme.server is not None:
                conn = self._scheme.server.wrap_socket(conn, server_side=True)
            with conn:
                self._behaviour(conn)
                self.done.wait(60)

    def close(self) -> None:
        self.done.set()
        self._server.close()


def read_request(conn: socket.socket, body: int, rate_bps: int = 0) -> None:
    """Read a request's head and ``body`` bytes, at ``rate_bps`` (0: as fast as they come)."""
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(1)
    left = body
    while left:
        got = conn.recv(min(64 * 1024, left))
        assert got
        left -= len(got)
        if rate_bps:
            time.sleep(len(got) / rate_bps)


def answer(conn: socket.socket, text: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(text), text))


def put(
    scheme: Scheme, port: int, bodies: list[bytes], stall_timeout_s: float, sndbuf: int = 0
) -> tuple[list[urllib3.BaseHTTPResponse] | Exception, wire.Watch]:
    """PUT each body in turn, on one kept-alive connection, under one watch (``sndbuf``: the client's socket
    send buffer, 0 = the kernel's)."""
    options = [(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)] if sndbuf else []
    manager = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=stall_timeout_s, read=stall_timeout_s),
        retries=urllib3.Retry(0),
        ca_certs=scheme.ca,
        socket_options=HTTPConnection.default_socket_options + options,
    )
    manager.pool_classes_by_scheme = dict(wire.POOL_CLASSES)
    url = f"{scheme.name}://127.0.0.1:{port}/x"
    with wire.watching(stall_timeout_s) as watch:
        try:
            return [manager.request("PUT", url, body=body) for body in bodies], watch
        except urllib3.exceptions.HTTPError as exc:  # urllib3 wraps the watch's Stalled (S3Store reads the watch)
            return exc, watch


BODY = random.Random(5).randbytes(8 * MiB)


@pytest.mark.parametrize("reads", [1 * MiB, len(BODY)], ids=["stops reading", "never answers"])
def test_a_peer_that_stops_is_a_stall(scheme: Scheme, reads: int) -> None:
    server = TinyServer(scheme, lambda conn: read_request(conn, reads))
    started = time.monotonic()
    try:
        failed, watch = put(scheme, server.port, [BODY], stall_timeout_s=1.0)
    finally:
        server.close()
    assert isinstance(failed, urllib3.exceptions.MaxRetryError)
    assert watch.fault is not None
    assert watch.fault.startswith("stalled: nothing written or acknowledged for 1 s")
    assert watch.acked <= reads + 64 * 1024 + 2 * 64 * 1024  # what was read, its buffer, and the headers
    assert time.monotonic() - started < 30


def test_a_slow_peer_that_keeps_reading_is_no_stall(scheme: Scheme) -> None:
    """8 MiB read at ~2 MiB/s: 4 s, four stall timeouts, and never 1 s without a byte acknowledged; then a
    second request on the same connection (the first answer's byte read by the wire over TLS is not lost)."""

    def slow(conn: socket.socket) -> None:
        read_request(conn, len(BODY), rate_bps=2 * MiB)
        answer(conn, b"first")
        read_request(conn, 1000)
        answer(conn, b"second")

    server = TinyServer(scheme, slow)
    started = time.monotonic()
    try:
        responses, watch = put(scheme, server.port, [BODY, BODY[:1000]], stall_timeout_s=1.0)
    finally:
        server.close()
    assert isinstance(responses, list), responses
    assert [(r.status, r.data) for r in responses] == [(200, b"first"), (200, b"second")]
    assert watch.fault is None
    assert watch.acked == watch.written > len(BODY) + 1000
    assert time.monotonic() - started > 1.0


def test_a_trickle_is_no_stall_when_each_write_waits_for_the_link(scheme: Scheme) -> None:
    """A small send buffer and a reader at 128 KiB/s: every write waits for the link. Writes are small enough
    (a plain socket reports partial writes, TLS writes one 16 KiB record) to show progress well within 1 s."""

    def trickle(conn: socket.socket) -> None:
        read_request(conn, 512 * 1024, rate_bps=128 * 1024)
        answer(conn, b"ok")

    server = TinyServer(scheme, trickle, rcvbuf=16 * 1024)
    try:
        responses, watch = put(scheme, server.port, [BODY[: 512 * 1024]], stall_timeout_s=1.0, sndbuf=16 * 1024)
    finally:
        server.close()
    assert isinstance(responses, list), (responses, watch.fault)
    assert responses[0].data == b"ok"
