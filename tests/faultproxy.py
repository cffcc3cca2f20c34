"""A small TCP fault proxy for tests: put it between a client and a server and break the link on purpose.

    with FaultProxy("127.0.0.1", server_port) as proxy:      # listens on 127.0.0.1:proxy.port
        proxy.cut_after(3 * MiB)       # drop every connection once 3 MiB more went client -> server
        proxy.stall()                  # hold all data (connections stay open) ... proxy.resume()
        proxy.set_rate(200_000)        # slow link: bytes/s per direction, 0 = full speed
        proxy.set_delay(0.6)           # long link: client -> server data held 0.6 s (new connections; netem-like)
        proxy.refuse(True)             # new connections are closed at once (server "down")
        proxy.cut_all()                # drop every open connection now
        log = proxy.record_up()        # from now on (time.monotonic(), nbytes) of every client -> server read
        proxy.bytes_up / proxy.bytes_down / proxy.connections / proxy.cuts

Connections are dropped with shutdown + close (SO_LINGER 0: RST), like a dead link or a killed peer. Only loopback or
addresses you own. Thread-based, no dependencies; works for any TCP protocol (S3/HTTP, MQTT...).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

CHUNK = 64 * 1024


def _hard_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv() on it (close() alone does not)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server((listen_host, port))
        self.host = listen_host
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Condition()
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self._stalled = False
        self._refuse = False
        self._rate = 0
        self._delay = 0.0
        self._cut_at: int | None = None  # bytes_up value at which to cut
        self.bytes_up = 0
        self.bytes_down = 0
        self._up_log: list[tuple[float, int]] | None = None
        self.connections = 0
        self.cuts = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- faults -----------------------------------------------------------------------------------------
    def cut_after(self, nbytes: int) -> None:
        """Drop all connections once ``nbytes`` more bytes went client -> server (once)."""
        with self._lock:
            self._cut_at = self.bytes_up + nbytes

    def cut_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
            self.cuts += 1
            self._lock.notify_all()
        for a, b in conns:
            _hard_close(a)
            _hard_close(b)

    def stall(self) -> None:
        with self._lock:
            self._stalled = True

    def resume(self) -> None:
        with self._lock:
            self._stalled = False
            self._lock.notify_all()

    def set_rate(self, bytes_per_s: int) -> None:
        with self._lock:
            self._rate = bytes_per_s

    def set_delay(self, seconds: float) -> None:
        """Hold every client -> server chunk this long after it was read, without lowering the throughput (a
        delay line per connection, at most DELAY_LINE_CHUNKS chunks deep), like ``netem delay`` on the uplink."""
        with self._lock:
            self._delay = seconds

    def refuse(self, on: bool = True) -> None:
        with self._lock:
            self._refuse = on
        if on:
            self.cut_all()

    def record_up(self) -> list[tuple[float, int]]:
        """Start a fresh log of the client -> server data as it arrives: (time.monotonic(), bytes) per read."""
        with self._lock:
            self._up_log = []
            return self._up_log

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_up = self.bytes_down = self.connections = self.cuts = 0
            self._cut_at = None

    # -- plumbing -----------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._refuse
            if refuse:
                _hard_close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                self._conns.append((client, upstream))
                self.connections += 1
                delay = self._delay
            send_up = _DelayLine(upstream, delay).put if delay else _sender(upstream)
            for src, send, up in ((client, send_up, True), (upstream, _sender(client), False)):
                threading.Thread(target=self._pump, args=(src, send, up), daemon=True).start()

    def _pump(self, src: socket.socket, send: Callable[[bytes], None], up: bool) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    send(b"")
                    return
                with self._lock:
                    while self._stalled and not self._closed and self._alive(src):
                        self._lock.wait(0.1)
                    rate = self._rate
                    cut = False
                    if up and self._cut_at is not None and self.bytes_up + len(data) >= self._cut_at:
                        data = data[: max(0, self._cut_at - self.bytes_up)]
                        self._cut_at = None
                        cut = True
                    if up:
                        self.bytes_up += len(data)
                        if self._up_log is not None:
                            self._up_log.append((time.monotonic(), len(data)))
                    else:
                        self.bytes_down += len(data)
                if rate:
                    time.sleep(len(data) / rate)
                if data:
                    send(data)
                if cut:
                    self.cut_all()
                    return
        except OSError:
            pass
        finally:
            self._forget(src)

    def _alive(self, sock: socket.socket) -> bool:
        return any(sock in pair for pair in self._conns)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            pair = next((p for p in self._conns if sock in p), None)
            if pair is None:
                return
            self._conns.remove(pair)
        for s in pair:
            _hard_close(s)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        self.cut_all()
        self.resume()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def _sender(dst: socket.socket) -> Callable[[bytes], None]:
    """Send to ``dst`` at once; b"" = the end of the stream (half-close)."""

    def send(data: bytes) -> None:
        if data:
            dst.sendall(data)
        else:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    return send


DELAY_LINE_CHUNKS = 8  # at most 512 KiB held in a delay line: reading stops (back-pressure) beyond it


class _DelayLine:
    """Sends each chunk ``delay`` seconds after it was put, in order, from its own thread."""

    def __init__(self, dst: socket.socket, delay: float) -> None:
        self._dst = dst
        self._delay = delay
        self._queue: queue.Queue[tuple[float, bytes]] = queue.Queue(DELAY_LINE_CHUNKS)
        self._dead = threading.Event()
        threading.Thread(target=self._run, name="faultproxy-delay", daemon=True).start()

    def put(self, data: bytes) -> None:
        """Queue ``data`` (b"" = end of stream); raises OSError once the destination is gone."""
        item = (time.monotonic() + self._delay, data)
        while not self._dead.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.2)
                return
        raise OSError("delay line closed")

    def _run(self) -> None:
        try:
            while True:
                try:
                    due, data = self._queue.get(timeout=0.5)
                except queue.Empty:
                    if self._dst.fileno() < 0:  # the connection was dropped
                        return
                    continue
                time.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    self._dst.shutdown(socket.SHUT_WR)
                    return
                self._dst.sendall(data)
        except OSError:
            _hard_close(self._dst)
        finally:
            self._dead.set()
