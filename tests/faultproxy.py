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

import collections
import contextlib
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
        self._buffer = 0  # socket buffer bytes for new connections (0 = the kernel's, which grow to MBs)
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

    def set_delay(self, seconds: float, buffer: int = 64 * 1024) -> None:
        """Hold every client -> server chunk this long after it was read, without lowering the throughput (a
        delay line per connection holding at most ``buffer`` bytes), like ``netem delay`` on the uplink. New
        connections also get socket buffers of ``buffer`` bytes, so the proxy does not take MBs off the client
        at once and drain them slowly later, as a splitting proxy (a satellite PEP) would: ``buffer=0`` keeps the
        kernel's buffers and a 512 KiB line. One connection then moves at most ``buffer / seconds`` bytes/s."""
        with self._lock:
            self._delay = seconds
            self._buffer = buffer

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
                upstream = _connect(self.target, self._buffer)
                _limit_buffers(client, self._buffer)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                self._conns.append((client, upstream))
                self.connections += 1
                delay = self._delay
            budget = self._buffer or 512 * 1024
            send_up = _DelayLine(upstream, delay, budget).put if delay else _sender(upstream)
            for src, send, up in ((client, send_up, True), (upstream, _sender(client), False)):
                threading.Thread(target=self._pump, args=(src, send, up), daemon=True).start()

    def _pump(self, src: socket.socket, send: Callable[[bytes], None], up: bool) -> None:
        try:
            while True:
                data = src.recv(min(CHUNK, self._buffer or CHUNK))
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


def _limit_buffers(sock: socket.socket, nbytes: int) -> None:
    if nbytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, nbytes)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, nbytes)


def _connect(target: tuple[str, int], buffer: int) -> socket.socket:
    """A connection to ``target`` whose buffers are ``buffer`` bytes (set before connecting), 0 = the kernel's."""
    sock = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET, socket.SOCK_STREAM)
    try:
        _limit_buffers(sock, buffer)
        sock.settimeout(10)
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def _sender(dst: socket.socket) -> Callable[[bytes], None]:
    """Send to ``dst`` at once; b"" = the end of the stream (half-close)."""

    def send(data: bytes) -> None:
        if data:
            dst.sendall(data)
        else:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    return send


class _DelayLine:
    """Sends each chunk ``delay`` seconds after it was put, in order, from its own thread; holds at most
    ``budget`` bytes (or one chunk), so the proxy never takes more than that off the client ahead of the link."""

    def __init__(self, dst: socket.socket, delay: float, budget: int) -> None:
        self._dst = dst
        self._delay = delay
        self._budget = budget
        self._items: collections.deque[tuple[float, bytes]] = collections.deque()
        self._held = 0
        self._dead = False
        self._cond = threading.Condition()
        threading.Thread(target=self._run, name="faultproxy-delay", daemon=True).start()

    def put(self, data: bytes) -> None:
        """Queue ``data`` (b"" = end of stream); raises OSError once the destination is gone."""
        with self._cond:
            while not self._dead and self._held and self._held + len(data) > self._budget:
                self._cond.wait(0.2)
            if self._dead:
                raise OSError("delay line closed")
            self._items.append((time.monotonic() + self._delay, data))
            self._held += len(data)
            self._cond.notify_all()

    def _next(self) -> tuple[float, bytes] | None:
        with self._cond:
            while not self._items:
                if self._dst.fileno() < 0:  # the connection was dropped
                    return None
                self._cond.wait(0.5)
            return self._items[0]

    def _run(self) -> None:
        try:
            while item := self._next():
                due, data = item
                time.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    self._dst.shutdown(socket.SHUT_WR)
                    return
                self._dst.sendall(data)
                with self._cond:
                    self._items.popleft()
                    self._held -= len(data)
                    self._cond.notify_all()
        except OSError:
            _hard_close(self._dst)
        finally:
            with self._cond:
                self._dead = True
                self._cond.notify_all()
