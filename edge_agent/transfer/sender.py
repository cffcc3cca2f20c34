"""Sends the parts of one upload, each in its own thread holding one gate slot; results go to a queue.

A part's bytes stay in memory until S3 acknowledges them; network errors, stalls and missed deadlines are retried
with backoff (same bytes, no re-encode); a slot is released when its part is acknowledged or given up. Each
request goes through a tap of the engine's link (:mod:`edge_agent.transfer.link`): its bytes are paced by the
shared bucket as they are written, its deadline comes from the link-rate estimate (doubling with each retry of
the part); the part's bytes feed that estimate when the server answered it (a failed request counts its time
with no bytes), and after it the thin-link guard looks again.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.engine.commands import PartSent
from edge_agent.engine.upload import StoredPart
from edge_agent.transfer.context import Context
from edge_agent.transfer.errors import RetryableError, TransferError
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.threadhold import ThreadHold


@dataclass(frozen=True)
class SendFailed:
    number: int
    error: BaseException


class PartSender:
    def __init__(self, ctx: Context, path: str, key: str, upload_id: str, cancelled: Callable[[], bool]) -> None:
        self._ctx = ctx
        self._path = path
        self._key = key
        self._upload_id = upload_id
        self._cancelled = cancelled
        self.results: queue.Queue[PartSent | SendFailed] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def send(self, number: int, offset: int, data: bytearray, md5: str) -> None:
        """The caller holds one gate slot for this part; the sender releases it."""
        t = threading.Thread(target=self._run, args=(number, offset, data, md5), name=f"part-{number}", daemon=True)
        self._threads = [th for th in self._threads if th.is_alive()]
        self._threads.append(t)
        t.start()

    def _upload(self, number: int, data: bytearray, md5: str, attempt: int) -> str:
        ctx = self._ctx
        tap = ctx.link.tap(len(data), attempt, ctx.effective.concurrency, self._cancelled)
        handle = ctx.link.begin(len(data))
        mark = ThreadHold.mark()
        completed: bool | None = False
        try:
            etag = ctx.store.upload_part(self._key, self._upload_id, number, data, md5, tap)
            completed = etag == md5
        except Stopped:
            completed = None
            raise
        finally:
            ctx.link.end(handle, completed, mark.since())
            ctx.apply_guard()
        if not completed:
            raise RetryableError(f"part {number}: server ETag {etag} is not the MD5 {md5}")
        return etag

    def _run(self, number: int, offset: int, data: bytearray, md5: str) -> None:
        ctx = self._ctx
        attempts = itertools.count()
        try:
            ctx.gate.wait_open(self._cancelled)  # a new part starts only inside the window
            etag, retries = ctx.retrying(
                f"upload of part {number} of {self._key}",
                lambda: self._upload(number, data, md5, next(attempts)),
                self._cancelled,
            )
            ctx.counters.add_bytes(len(data))
            ctx.on_progress(self._path, len(data))
            self.results.put(PartSent(StoredPart(number, etag, len(data), offset), retries))
        except (TransferError, Stopped) as exc:
            self.results.put(SendFailed(number, exc))
        except Exception as exc:  # a bug: report it, never lose the slot
            self.results.put(SendFailed(number, exc))
        finally:
            ctx.gate.release()

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)
