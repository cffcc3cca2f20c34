"""sd_notify over a real Unix datagram socket, as systemd listens for it."""

from __future__ import annotations

import socket
from pathlib import Path

from edge_agent.service.sdnotify import Notifier


def _listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1)
    return sock


def test_ready_and_watchdog_pings_at_half_the_period(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _listener(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "10000000"})
        assert notifier.watchdog_interval_s == 5.0
        notifier.ready()
        assert sock.recv(64) == b"READY=1"
        notifier.alive(100.0)
        notifier.alive(102.0)  # not due yet
        notifier.alive(105.0)
        assert [sock.recv(64), sock.recv(64)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
        sock.settimeout(0.05)
        try:
            extra = sock.recv(64)
        except TimeoutError:
            extra = b""
        assert extra == b""


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    notifier.alive(1.0)


def test_a_missing_socket_is_logged_not_fatal(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).notify("READY=1") is False
