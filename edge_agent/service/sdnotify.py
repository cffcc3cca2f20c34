"""systemd's notify protocol (``sd_notify``): ``READY=1`` once serving, ``WATCHDOG=1`` while the loop is alive.

Only active when systemd sets ``NOTIFY_SOCKET`` (``Type=notify``); ``WATCHDOG_USEC`` (``WatchdogSec=``) sets
how often the main loop must prove it is alive: we ping at half that period, from the loop itself, so a
hung loop stops the pings and systemd restarts the agent.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # An address starting with '@' is in the abstract namespace.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._last_ping: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, state: str) -> bool:
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", state, exc)
            return False
        return True

    def ready(self) -> None:
        self.notify("READY=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def alive(self, now: float) -> None:
        """Call from the main loop each turn; pings the watchdog when due."""
        if self.watchdog_interval_s is None:
            return
        if self._last_ping is None or now - self._last_ping >= self.watchdog_interval_s:
            self.notify("WATCHDOG=1")
            self._last_ping = now
