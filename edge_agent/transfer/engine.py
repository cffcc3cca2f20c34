"""``Engine``: the scheduler over a journal, a store, the slot gate, the token bucket and file jobs
(docs/upload-engine.md, "Public API"). The store and the journal come from outside (the ``ports``):
:func:`edge_agent.transfer.bootstrap.open_engine` wires the real ones, unit tests pass fakes.

Two modes over one scheduler:
- ``run_until_idle()`` (``edgefleet upload``): every queued file gets one attempt (with in-process retries
  and clean restarts); returns a report;
- ``start()`` / ``stop()`` (agent service): a background thread takes files as they are enqueued, forever;
  failed files wait ``retry_delay`` and move back in the order.
At most ``concurrency`` files run at once (and at most ``concurrency`` parts are in flight across them), as the
thin-link guard applies it (``Context.effective``: fewer on a link too thin for the assignment).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edge_agent.engine.commands import Disposition
from edge_agent.engine.events import EngineEvent, EngineStats, FileResult, RunReport
from edge_agent.engine.limits import Limits
from edge_agent.engine.linkguard import backlog_eta_s
from edge_agent.engine.queue import after_failure, pick_next
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.context import Codec, Context, RetryNotice
from edge_agent.transfer.encoding import Compression, Mode
from edge_agent.transfer.job import FileJob, Outcome
from edge_agent.transfer.journal import DONE, REJECTED
from edge_agent.transfer.memory import pin_mmap_threshold
from edge_agent.transfer.ports import Journal, Store, TimesFirstByte

log = logging.getLogger("edgefleet.upload")


def _default_codec() -> Codec:
    from fleet_audio import source

    return source


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        limits: Limits,
        on_event: Callable[[EngineEvent], None] | None = None,
        *,
        store: Store,
        journal: Journal,
        codec: Codec | None = None,
        clock: Callable[[], float] = time.time,
        compression: Compression | None = None,
    ) -> None:
        """``store`` and ``journal`` become the engine's: :meth:`close` closes the journal. ``compression``: how
        each new file's level is chosen (default: the limits' level, as assigned)."""
        pin_mmap_threshold()
        self.config = config
        self._on_event = on_event
        self._journal = journal
        codec = codec or _default_codec()
        self._ctx = Context(config, limits, store, self._journal, codec, self._emit, clock, compression)
        self._lock = threading.Condition()
        self._active: dict[str, FileJob] = {}
        self._threads: list[threading.Thread] = []
        self._results: dict[str, FileResult] = {}
        self._bg: threading.Thread | None = None

    # -- public API ----------------------------------------------------------------------------------
    @property
    def limits(self) -> Limits:
        return self._ctx.limits

    @property
    def compression(self) -> Compression:
        """How each new file's level is chosen, and the measured encode rates and ratios."""
        return self._ctx.compression

    def set_progress_callback(self, fn: Callable[[str, int], None]) -> None:
        """``fn(path, nbytes)`` after every acknowledged (or skipped) part."""
        self._ctx.on_progress = fn

    def set_retry_callback(self, fn: Callable[[RetryNotice], None]) -> None:
        """``fn(notice)`` when a request to S3 failed and will be tried again, and when it then went through."""
        self._ctx.on_retry = fn

    def enqueue(self, path: Path, recheck: bool = False) -> bool:
        """Put a file in the durable queue. A file already uploaded with the same size and mtime stays done
        unless ``recheck``. Returns whether it is queued."""
        path = Path(path).absolute()
        st = os.stat(path)
        queued = self._journal.enqueue(str(path), st.st_size, st.st_mtime_ns, self._ctx.clock(), recheck)
        with self._lock:
            self._lock.notify_all()
        return queued

    def set_limits(self, limits: Limits) -> None:
        self._ctx.set_limits(limits)
        with self._lock:
            self._lock.notify_all()

    def set_assigned(self, assigned: bool) -> None:
        """The limits come from the controller's assignment (or not): see :class:`Compression`."""
        self._ctx.compression.set_assigned(assigned)

    def run_until_idle(self) -> RunReport:
        self._results = {}
        self._schedule(until_idle=True)
        return RunReport(tuple(self._results.values()))

    def start(self) -> None:
        if self._bg is not None:
            return
        self._ctx.stop.clear()
        self._bg = threading.Thread(target=self._schedule, args=(False,), name="upload-scheduler", daemon=True)
        self._bg.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking parts; parts on the wire are cancelled (sent again on resume); the journal keeps the rest."""
        self._ctx.stop.set()
        self._ctx.gate.wake()
        with self._lock:
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        if self._bg is not None:
            self._bg.join(max(0.0, deadline - time.monotonic()))
            self._bg = None
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.stop()
        self._journal.close()

    def stats(self) -> EngineStats:
        now = self._ctx.clock()
        entries = self._journal.queued()
        c = self._ctx.counters
        rate = self._ctx.link.rate()
        encode_bps, ratios = self._ctx.compression.measured()
        backlog = sum(e.size for e in entries)
        with self._lock:
            active = len(self._active)
        return EngineStats(
            backlog_files=len(entries),
            backlog_bytes=backlog,
            oldest_age_s=max((now - e.enqueued_at for e in entries), default=0.0),
            active_uploads=active,
            throughput_bps=rate or 0.0,
            bytes_uploaded_total=c.bytes_uploaded_total,
            retries_total=c.retries_total,
            errors_total=c.errors_total,
            backlog_eta_s=backlog_eta_s(backlog, rate),
            encode_bps_by_level=tuple(encode_bps),
            compression_ratio_by_level=tuple(ratios),
            effective_concurrency=self._ctx.effective.concurrency,
            s3_ttfb_s=store.first_byte_s() if isinstance(store := self._ctx.store, TimesFirstByte) else None,
        )

    def status(self, path: Path) -> tuple[str, str, str] | None:
        """(status, key, reason) from the journal: status is queued, done or rejected."""
        return self._journal.status(str(Path(path).absolute()))

    # -- scheduler -----------------------------------------------------------------------------------
    def _emit(self, event: EngineEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("on_event handler failed for %s", event)

    def _schedule(self, until_idle: bool) -> None:
        attempted: set[str] = set()
        ctx = self._ctx
        while not ctx.stop.is_set():
            now = ctx.clock()
            limits = ctx.effective
            with self._lock:
                busy = set(self._active)
                room = len(busy) < self._files_allowed(limits) and not limits.stopped
            entries = self._journal.queued()
            if until_idle:
                entries = [e for e in entries if e.path not in attempted]
                entries = [
                    e if e.not_before <= now else type(e)(e.path, e.size, e.enqueued_at, e.failures, 0.0)
                    for e in entries
                ]
            entry = pick_next(entries, now, busy, ctx.config.aging_bps) if room else None
            if entry is not None:
                attempted.add(entry.path)
                self._launch(entry.path)
                continue
            with self._lock:
                if until_idle and not self._active and not [e for e in entries if e.path not in busy]:
                    break
                self._lock.wait(1.0)
        if until_idle:
            with self._lock:
                while self._active:
                    self._lock.wait(1.0)

    def _files_allowed(self, limits: Limits) -> int:
        """Files that may be in flight. While the cost model chooses the levels (``Mode.MODEL``) and the link is
        not measured yet, one: the model must not commit a whole batch to its default level on a guess. Its
        first completed parts (one second of busy link time) measure it (``edge_agent.engine.linkrate``), or,
        on a link fast enough to carry the whole file sooner, its parts' rate so far (``Compression.file_stored``);
        then the rest start."""
        if self._ctx.compression.mode is Mode.MODEL and not self._ctx.compression.link_known(self._ctx.link.rate()):
            return 1
        return max(1, limits.concurrency)

    def _launch(self, path: str) -> None:
        job = FileJob(self._ctx, path)
        with self._lock:
            self._active[path] = job
        t = threading.Thread(target=self._run_job, args=(job,), name=f"file-{Path(path).name}", daemon=True)
        self._threads = [th for th in self._threads if th.is_alive()] + [t]
        t.start()

    def _run_job(self, job: FileJob) -> None:
        try:
            outcome = job.run()
        except Exception as exc:  # a bug; keep the file queued
            log.exception("%s: unexpected error", job.path)
            outcome = Outcome(Disposition.RETRY, FileResult(job.path, False, job.key, f"internal error: {exc}"))
        self._settle(job.path, outcome)
        with self._lock:
            self._active.pop(job.path, None)
            self._results[job.path] = outcome.result
            self._lock.notify_all()

    def _settle(self, path: str, outcome: Outcome) -> None:
        r = outcome.result
        if outcome.disposition is Disposition.DONE:
            self._journal.finish_entry(path, DONE, r.key, r.reason)
        elif outcome.disposition is Disposition.REJECTED:
            self._journal.finish_entry(path, REJECTED, r.key, r.reason)
        elif outcome.disposition is Disposition.RETRY:
            entry = next((e for e in self._journal.queued() if e.path == path), None)
            if entry is not None:
                self._journal.update_entry(after_failure(entry, self._ctx.clock()), r.reason)
        elif outcome.disposition is Disposition.DEFER:
            entry = next((e for e in self._journal.queued() if e.path == path), None)
            if entry is not None:
                later = self._ctx.clock() + max(1.0, self._ctx.config.settle_s)
                self._journal.update_entry(replace(entry, not_before=later), r.reason)
