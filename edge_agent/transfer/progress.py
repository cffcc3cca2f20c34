"""Progress for ``edgefleet upload``: a one-line bar with rate and ETA on a terminal, plain lines otherwise.

Until a file is done its stored size is estimated as its original size (an upper bound for FLAC), so the
ETA is pessimistic and improves as files finish.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from edge_agent.engine.events import EngineEvent
from fleet_protocol.vocabulary import EventKind

MiB = 1024 * 1024


def _fmt_eta(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, sizes: dict[str, int], stream: TextIO = sys.stderr, tty: bool | None = None) -> None:
        self._est = dict(sizes)  # path -> estimated stored bytes
        self._sent: dict[str, int] = dict.fromkeys(sizes, 0)
        self._done = 0
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_bytes(self, path: str, nbytes: int) -> None:
        with self._lock:
            self._sent[path] = self._sent.get(path, 0) + nbytes

    def on_event(self, ev: EngineEvent) -> None:
        with self._lock:
            if ev.kind is EventKind.UPLOAD_COMPLETED:
                self._done += 1
                self._est[ev.file] = self._sent.get(ev.file, 0) if ev.stored_bytes else 0
            elif ev.kind in (EventKind.FILE_REJECTED, EventKind.UPLOAD_FAILED):
                self._est[ev.file] = self._sent.get(ev.file, 0)
        if not self._tty:
            detail = f" ({ev.reason})" if ev.reason else ""
            print(f"{ev.kind.value}: {ev.file}{' -> ' + ev.key if ev.key else ''}{detail}", file=self._stream)

    def line(self) -> str:
        with self._lock:
            sent, total = sum(self._sent.values()), max(1, sum(self._est.values()))
            done, files = self._done, len(self._est)
        elapsed = max(1e-6, time.monotonic() - self._t0)
        rate = sent / elapsed
        frac = min(1.0, sent / total)
        eta = _fmt_eta((total - sent) / rate) if rate > 0 else "?"
        bar = "#" * int(frac * 30)
        return (
            f"[{bar:<30}] {sent / MiB:8.1f}/{total / MiB:.1f} MiB  {rate / MiB:6.2f} MiB/s  ETA {eta}  "
            f"files {done}/{files}"
        )

    def start(self) -> None:
        if self._tty:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._stream.write("\r" + self.line())
            self._stream.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._stream.write("\r" + self.line() + "\n")
            self._stream.flush()
