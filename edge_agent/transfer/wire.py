"""The wire under every S3 request: paced writes and progress-based stall detection (no whole-request timeout).

minio 7.2 hands urllib3 a part as one ``bytes`` body (it needs the whole body for the request's SHA-256 and
length), and urllib3 hands it to ``HTTPConnection.send``, which would ``sendall`` it at link speed under one
socket timeout. The connection classes here (installed in the S3 store's pool manager) replace ``send`` and
``getresponse``. While a :class:`Watch` is current (a context variable set around one store call, in the
calling thread):

- ``send`` writes in steps: with a bandwidth cap, ``tap.pace(n)`` (the engine's shared token bucket) before
  each chunk of at most ``tap.quantum()`` bytes; without one, chunks of ``WRITE_MAX`` (over TLS, writes of one
  16 KiB record). The socket waits at most ``POLL_S`` per write, so the watch looks at the request between
  writes;
- ``getresponse`` waits for the first byte of the answer in ``POLL_S`` steps before http.client reads it (over
  TLS it reads that byte itself, to tell the answer from TLS 1.3 session tickets, and hands it on);
- the watch notes when the answer to a small request (at most ``SMALL_REQUEST_BYTES``: create, complete, HEAD,
  list) starts after its last byte was written: the store's time to first byte;
- at every step the watch reads how many bytes the kernel still holds unacknowledged (Linux ``SIOCOUTQ``;
  where that is unavailable a byte counts as acknowledged once written) and fails the request with
  :class:`Stalled` when neither the written nor the acknowledged count grew for ``stall_timeout_s`` (waiting
  for our own cap is not a stall), counted from no earlier than the time the link, at the tap's ``carry_bps``,
  could have passed on every byte written (a middlebox with a closed TCP window holds them meanwhile: the rule
  and its bound are in :mod:`edge_agent.engine.linkguard`), or when it runs past the tap's deadline; it raises
  ``Stopped`` as soon as the tap says the part is cancelled;
- once the whole request is written and every byte of it acknowledged, the wait for the answer is the
  deadline's alone when the request has one (a part): the next hop may be a buffering middlebox (a satellite
  link's performance-enhancing proxy) that took the whole part at once and passes it on at the link's pace, so
  nothing moving here for a stall timeout says nothing about the link. A request without a deadline (create,
  complete, list, HEAD) keeps the stall timer for its answer too.

Outside a watch the connections behave as urllib3's. Connect and response reads use ``stall_timeout_s`` per
socket operation (a recv that waits that long for a byte is a stall as well).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.client
import io
import select
import socket
import ssl
import struct
import termios
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from edge_agent.engine.linkguard import stall_clock_start
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.ports import PartTap

POLL_S = 0.25  # the longest a socket operation blocks before the watch looks again
WRITE_MAX = 256 * 1024  # bytes per write when nothing paces them
TLS_WRITE_MAX = 16 * 1024  # bytes per write over TLS: one record
#: a request of at most this many bytes (headers and body) times its answer's first byte: a big part's time to
#: first byte would mostly be the kernel's send buffer draining, not the server answering
SMALL_REQUEST_BYTES = 64 * 1024
_TIOCOUTQ = getattr(termios, "TIOCOUTQ", None)  # == SIOCOUTQ on Linux: bytes sent but not yet acknowledged


class Stalled(TimeoutError):
    """A request made no progress for the stall timeout, or ran past its deadline."""


class Watch:
    """One request's progress: bytes written and acknowledged, when either last grew, its deadline."""

    def __init__(
        self, stall_timeout_s: float, tap: PartTap | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stall_timeout_s = stall_timeout_s
        self.tap = tap
        self._clock = clock
        self.started = self._progress_at = clock()
        self.written = 0
        self.acked = 0
        self.fault: str | None = None  # why the watch failed the request
        self.awaiting = False  # the request is written: waiting for its answer
        self.last_write_at: float | None = None
        self._written_before = 0  # bytes written before the current request
        #: the last small request's time to first byte: from its last byte written to its answer's first byte
        self.first_byte_s: float | None = None

    def next_chunk(self, available: int) -> int:
        """How many of ``available`` bytes to write now; with a cap, waits until the bucket gives them."""
        quantum = self.tap.quantum() if self.tap is not None else 0
        if not quantum or self.tap is None:
            return min(available, WRITE_MAX)
        n = min(available, quantum)
        self.tap.pace(n)
        self._progress_at = max(self._progress_at, self._clock())  # waiting for our own cap is not a stall
        return n

    def wrote(self, nbytes: int, unacked: int | None) -> None:
        self.written += nbytes
        self.awaiting = False
        self._progress_at = self.last_write_at = self._clock()
        self.heard(unacked)

    def await_answer(self) -> None:
        """The request is written; its answer is awaited from now."""
        self.awaiting = True

    def answered(self) -> None:
        """The answer to the request written started: its time to first byte, if the request was small."""
        self.awaiting = False
        sent, self._written_before = self.written - self._written_before, self.written
        if self.last_write_at is not None and 0 < sent <= SMALL_REQUEST_BYTES:
            self.first_byte_s = self._clock() - self.last_write_at

    def heard(self, unacked: int | None) -> None:
        """The kernel holds ``unacked`` bytes not yet acknowledged (None: unknown, count what was written)."""
        acked = self.written if unacked is None else max(self.acked, self.written - unacked)
        if acked > self.acked:
            self.acked = acked
            self._progress_at = self._clock()

    def check(self) -> None:
        """Raise ``Stopped`` when cancelled, :class:`Stalled` on a stall or a missed deadline."""
        if self.tap is not None and self.tap.cancelled():
            raise Stopped
        now = self._clock()
        deadline = self.tap.deadline_s if self.tap is not None else None
        handed_on = self.awaiting and self.acked >= self.written and deadline is not None
        carry = self.tap.carry_bps if self.tap is not None else None
        since = stall_clock_start(self._progress_at, self.started, self.written, carry)
        if now - since > self.stall_timeout_s and not handed_on:
            self._fail(
                f"stalled: nothing written or acknowledged for {self.stall_timeout_s:g} s "
                f"({self.acked} of {self.written} bytes acknowledged"
                + (f"; the link could have passed them on after {since - self.started:.0f} s)" if carry else ")")
            )
        if deadline is not None and now - self.started > deadline:
            waiting = f"; no answer for {now - self._progress_at:.0f} s after the last byte" if handed_on else ""
            self._fail(
                f"too slow: not done within its deadline of {deadline:.0f} s from the link rate and its size "
                f"({self.acked} of {self.written} bytes acknowledged{waiting})"
            )

    def _fail(self, why: str) -> None:
        self.fault = why
        raise Stalled(why)


_current: ContextVar[Watch | None] = ContextVar("edgefleet_wire_watch", default=None)


@contextlib.contextmanager
def watching(stall_timeout_s: float, tap: PartTap | None = None) -> Iterator[Watch]:
    """The requests made in this block (in this thread) are watched."""
    watch = Watch(stall_timeout_s, tap)
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)


def _unacked(sock: socket.socket) -> int | None:
    if _TIOCOUTQ is None:
        return None
    try:
        raw = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    return int(struct.unpack("i", raw)[0])


def _write(sock: socket.socket, view: memoryview, watch: Watch) -> None:
    # a plain socket takes what fits and says how much; a TLS write is all or nothing: one record at a time,
    # so progress is seen per 16 KiB even on a very slow link
    most = TLS_WRITE_MAX if isinstance(sock, ssl.SSLSocket) else WRITE_MAX
    while view:
        watch.check()
        try:
            sent = sock.send(view[:most])
        except TimeoutError:  # no room in the send buffer for POLL_S: the link is slow or stalled
            watch.heard(_unacked(sock))
            continue
        view = view[sent:]
        watch.wrote(sent, _unacked(sock))


def _send(conn: HTTPConnection, data: Any, plain_send: Callable[[Any], None]) -> None:
    watch = _current.get()
    if watch is None or not isinstance(data, bytes | bytearray | memoryview):
        plain_send(data)
        return
    if conn.sock is None:
        conn.connect()  # as http.client's send does (auto_open)
    sock = conn.sock
    view = memoryview(data).cast("B")
    before = sock.gettimeout()
    sock.settimeout(POLL_S)
    try:
        while view:
            n = watch.next_chunk(len(view))
            _write(sock, view[:n], watch)
            view = view[n:]
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(before)


def _first_byte(sock: ssl.SSLSocket) -> bytes | None:
    """The answer's first byte; None when what came was TLS housekeeping only (TLS 1.3 session tickets arrive
    after the handshake and make the socket readable long before the answer does)."""
    before = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return sock.recv(1)  # b"" at the end of the stream: http.client reports it
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    finally:
        sock.settimeout(before)


def _await_answer(sock: socket.socket | None) -> bytes:
    """Wait until the server's answer starts, watching what it acknowledged meanwhile. Returns the answer's
    first byte when it had to be read to tell the answer from TLS housekeeping (else b"")."""
    watch = _current.get()
    if watch is None or sock is None:
        return b""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    first = b""
    watch.await_answer()
    while True:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            break
        if poller.poll(POLL_S * 1000):
            if not isinstance(sock, ssl.SSLSocket):
                break
            if (got := _first_byte(sock)) is not None:
                first = got
                break
        watch.heard(_unacked(sock))
        watch.check()
    watch.answered()
    watch.heard(_unacked(sock))  # the answer came with the last acknowledgements
    return first


class _Prefixed(io.RawIOBase):
    """A stream with its first bytes already read: those, then the rest."""

    def __init__(self, first: bytes, rest: io.BufferedIOBase) -> None:
        super().__init__()
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._first:
            n = min(len(buffer), len(self._first))
            buffer[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        return self._rest.readinto1(buffer)  # what is there (readinto would wait to fill the buffer)

    def close(self) -> None:
        self._rest.close()
        super().close()


class _AnswerWithFirstByte(http.client.HTTPResponse):
    def __init__(self, first: bytes, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_Prefixed(first, self.fp))


class WireHTTPConnection(HTTPConnection):
    def send(self, data: Any) -> None:
        _send(self, data, super().send)

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _await_answer(self.sock)
        return super().getresponse()


class WireHTTPSConnection(HTTPSConnection):
    def send(self, data: Any) -> None:
        _send(self, data, super().send)

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        first = _await_answer(self.sock)
        if not first:
            return super().getresponse()
        # http.client builds the answer from the socket: this once, from the byte already read and the socket
        setattr(self, "response_class", functools.partial(_AnswerWithFirstByte, first))  # noqa: B010
        try:
            return super().getresponse()
        finally:
            delattr(self, "response_class")


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = WireHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WireHTTPSConnection


#: for ``urllib3.PoolManager.pool_classes_by_scheme``
POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}
