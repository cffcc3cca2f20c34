"""Progress for ``edgefleet upload`` (on stderr): a one-line bar with rate and ETA on a terminal, plain lines
otherwise, and what the upload is waiting for when S3 does not answer.

Until a file is done its stored size is estimated as its original size (an upper bound for FLAC), so the
ETA is pessimistic and improves as files finish. A file's outcome (stored, stored raw, FAILED) is not shown
here: the command prints one line per file on stdout at the end, and that is the one place it is said.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from edge_agent.engine.events import EngineEvent
from edge_agent.transfer.context import RetryNotice
from fleet_base.filenames import display_name, safe_text
from fleet_protocol.vocabulary import EventKind

MiB = 1024 * 1024
#: while S3 keeps failing, say so again at most this often
NOTICE_EVERY_S = 30.0
#: the plain-line progress events (failures and rejections are in the final report only); on a terminal
#: the bar shows the rest
_SHOWN = (EventKind.UPLOAD_STARTED, EventKind.UPLOAD_RESUMED, EventKind.UPLOAD_COMPLETED)
_SHOWN_WITH_BAR = (EventKind.UPLOAD_RESUMED,)


def _fmt_eta(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_duration(seconds: float) -> str:
    """``0.4 s``, ``45 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def retry_message(notice: RetryNotice, first: bool, wall_clock: float) -> str:
    """What the user reads while S3 fails (``first``: the first failure of a stretch), or once it answers."""
    if notice.recovered:
        return f"S3 answers again after {fmt_duration(notice.failing_s)} of failures; going on"
    at = time.strftime("%H:%M:%S", time.localtime(wall_clock + notice.delay_s))
    if first:
        head = f"{notice.what} failed: {notice.error}"
    else:
        head = f"S3 still failing after {fmt_duration(notice.failing_s)} ({notice.error})"
    nxt = f"next attempt in {fmt_duration(notice.delay_s)}, at {at}"
    if notice.give_up_in_s is None:
        tail = (
            "retrying until it answers (what is sent is kept: Ctrl-C and run the same command again resumes; "
            "--give-up-after SECONDS stops on its own)"
        )
    else:
        tail = f"gives up in {fmt_duration(notice.give_up_in_s)} (--give-up-after)"
    return f"{head}; {nxt}; {tail}"


class Progress:
    def __init__(
        self,
        sizes: dict[str, int],
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._est = dict(sizes)  # path -> estimated stored bytes
        self._sent: dict[str, int] = dict.fromkeys(sizes, 0)
        self._done = 0
        # stderr as it is now (not as it was when this module loaded: it may have been replaced since)
        self._stream = sys.stderr if stream is None else stream
        self._tty = self._stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._clock = clock
        self._wall_clock = wall_clock
        self._t0 = clock()
        self._failing_since: float | None = None  # S3 trouble: when the current stretch began
        self._last_notice = 0.0
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
        if ev.kind in (_SHOWN_WITH_BAR if self._tty else _SHOWN):
            detail = f" ({safe_text(ev.reason)})" if ev.reason else ""
            self.say(f"{ev.kind.value}: {display_name(ev.file)}{' -> ' + ev.key if ev.key else ''}{detail}")

    def on_retry(self, notice: RetryNotice) -> None:
        """Say that S3 fails and when the next attempt is: on the first failure, then every NOTICE_EVERY_S;
        and once when it answers again. Several requests failing at once are one stretch of trouble."""
        now = self._clock()
        with self._lock:
            first = self._failing_since is None
            if notice.recovered:
                if first:
                    return  # nothing was said about trouble
                self._failing_since = None
            else:
                if not first and now - self._last_notice < NOTICE_EVERY_S:
                    return
                if first:
                    self._failing_since = now - notice.failing_s
                self._last_notice = now
        self.say(retry_message(notice, first, self._wall_clock()))

    def say(self, text: str) -> None:
        """One line on the stream; on a terminal the bar is drawn again below it."""
        with self._write_lock:
            if self._tty:
                self._stream.write("\r\033[K" + text + "\n")
            else:
                self._stream.write(text + "\n")
            self._stream.flush()

    def line(self) -> str:
        with self._lock:
            sent, total = sum(self._sent.values()), max(1, sum(self._est.values()))
            done, files = self._done, len(self._est)
            waiting = self._failing_since is not None
        elapsed = max(1e-6, self._clock() - self._t0)
        rate = sent / elapsed
        frac = min(1.0, sent / total)
        eta = _fmt_eta((total - sent) / rate) if rate > 0 and not waiting else "?"
        bar = "#" * int(frac * 30)
        state = "  waiting for S3" if waiting else ""
        return (
            f"[{bar:<30}] {sent / MiB:8.1f}/{total / MiB:.1f} MiB  {rate / MiB:6.2f} MiB/s  ETA {eta}  "
            f"files {done}/{files}{state}"
        )

    def start(self) -> None:
        if self._tty:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()

    def _draw(self, end: str = "") -> None:
        with self._write_lock:
            self._stream.write("\r\033[K" + self.line() + end)
            self._stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._draw("\n")
