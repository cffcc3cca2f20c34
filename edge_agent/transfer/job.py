"""One attempt at uploading one file: the adapter that drives :class:`edge_agent.engine.upload.FileUpload`.

open source -> key -> (already stored?) -> journal + ListParts -> resume decision -> stream parts (part 1
last) -> wait for acks -> complete -> HEAD verify -> report. Failures end in an :class:`Outcome` telling the
engine what to do with the queue entry; the local file is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from edge_agent.audio import flacmeta
from edge_agent.audio.errors import RecordingNotReady, RecordingRejected, SourceChanged
from edge_agent.audio.source import META_SHA256, META_SIZE
from edge_agent.engine.events import EngineEvent, FileResult
from edge_agent.engine.partsize import ObjectTooLarge, plan_parts
from edge_agent.engine.splitter import Part, PartSplitter, TooManyParts
from edge_agent.engine.upload import (
    FileUpload,
    PartAction,
    ResumeDecision,
    ResumeKind,
    StoredPart,
    UploadSettings,
    decide_resume,
    md5_hex,
)
from edge_agent.transfer.context import Context, Source
from edge_agent.transfer.errors import FatalS3Error, TransferError, UploadGone
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.sender import Acked, PartSender
from fleet_protocol.vocabulary import EventKind

log = logging.getLogger("edgefleet.upload")


class Disposition(Enum):
    DONE = "done"  # stored and verified (or already there)
    REJECTED = "rejected"  # bad input: never retried unless the file changes
    RETRY = "retry"  # keep queued, try again later (counts as a failure)
    DEFER = "defer"  # not finished yet: look again after settle_s (no failure)
    STOPPED = "stopped"  # the engine stopped: keep queued, no failure


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    result: FileResult


class _Restart(Exception):
    """Start this file's upload over cleanly (abort, new upload, nothing skipped)."""

    def __init__(self, reason: str, abort: bool) -> None:
        super().__init__(reason)
        self.abort = abort


class FileJob:
    def __init__(self, ctx: Context, path: str) -> None:
        self.ctx = ctx
        self.path = path
        self.retries = 0
        self.cancel = False
        self.key = ""

    def _cancelled(self) -> bool:
        return self.cancel or self.ctx.stop.is_set()

    def _emit(self, kind: EventKind, src: Source | None, **kw: Any) -> None:
        event = EngineEvent(kind=kind, file=self.path, key=self.key, retries=self.retries)
        if src is not None:
            event = replace(event, original_bytes=src.original_size, stored_as=src.kind)
        self.ctx.emit(replace(event, **kw))

    def _fail(self, disposition: Disposition, reason: str, src: Source | None) -> Outcome:
        kind = EventKind.FILE_REJECTED if disposition is Disposition.REJECTED else EventKind.UPLOAD_FAILED
        if disposition is not Disposition.STOPPED:
            with self.ctx.counters.lock:
                self.ctx.counters.errors_total += 1
            self._emit(kind, src, reason=reason)
            log.warning("%s", reason if self.path in reason else f"{self.path}: {reason}")
        return Outcome(disposition, FileResult(self.path, False, self.key, reason))

    def run(self) -> Outcome:
        ctx, path = self.ctx, Path(self.path)
        started = time.monotonic()
        restarts = 0
        while True:
            src: Source | None = None
            try:
                st = path.stat()
                settled = ctx.clock() - st.st_mtime_ns / 1e9 >= ctx.config.settle_s
                ctx.codec.check_finished(path, settled=settled)
                record = ctx.journal.upload(self.path)
                level = record.settings.compression_level if record else ctx.limits.compression_level
                src = ctx.codec.open_source(path, level)
                return self._attempt(src, record is not None and restarts == 0, started)
            except _Restart as exc:
                restarts += 1
                log.warning("%s: %s; starting the upload over", self.path, exc)
                self._discard_upload(abort=exc.abort)
                if restarts > ctx.config.restarts_per_attempt:
                    return self._fail(Disposition.RETRY, f"gave up after {restarts} restarts: {exc}", src)
            except RecordingNotReady as exc:
                return self._fail(Disposition.DEFER, f"still being written: {exc}", src)
            except (RecordingRejected, ObjectTooLarge, TooManyParts) as exc:
                return self._fail(Disposition.REJECTED, str(exc), src)
            except FileNotFoundError as exc:
                return self._fail(Disposition.REJECTED, f"file vanished: {exc}", src)
            except SourceChanged as exc:
                self._discard_upload(abort=True)
                return self._fail(Disposition.RETRY, f"changed while uploading, will retry: {exc}", src)
            except Stopped:
                return self._fail(Disposition.STOPPED, "engine stopped", src)
            except TransferError as exc:
                return self._fail(Disposition.RETRY, str(exc), src)
            finally:
                if src is not None:
                    src.close()

    # -- one pass over the source ---------------------------------------------------------------------
    def _attempt(self, src: Source, may_resume: bool, started: float) -> Outcome:
        ctx = self.ctx
        self.key = ctx.codec.object_key(ctx.config.prefix, ctx.config.agent_id, Path(self.path), src)
        record = ctx.journal.upload(self.path) if may_resume else None
        fp = src.fingerprint
        requested = record.settings.plan.size if record else ctx.limits.part_size
        plan = plan_parts(requested, src.size_bound, src.header_size)
        if record and record.settings.plan.size >= plan.size:
            plan = record.settings.plan
        settings = UploadSettings(
            self.key,
            plan,
            src.header_size,
            record.settings.compression_level if record else ctx.limits.compression_level,
            (fp.size, fp.mtime_ns, fp.inode),
        )
        server = None
        if record is not None and record.settings == settings:
            server, _ = ctx.retrying(
                "ListParts", lambda: ctx.store.list_parts(record.settings.key, record.upload_id), self._cancelled
            )
        decision = decide_resume(record, settings, server)
        if decision.kind is ResumeKind.ABORT_THEN_FRESH:
            assert record is not None
            log.info("%s: %s: aborting upload %s", self.path, decision.reason, decision.upload_id)
            self._abort(record.settings.key, decision.upload_id)
        if decision.kind is not ResumeKind.RESUME:
            ctx.journal.drop_upload(self.path)
            if ctx.config.dedup and self._already_stored(src):
                self._emit(EventKind.UPLOAD_COMPLETED, src, reason="already stored", duration_s=0.0)
                return Outcome(
                    Disposition.DONE,
                    FileResult(self.path, True, self.key, "already stored", src.original_size, 0, src.kind),
                )
            upload_id, _ = ctx.retrying(
                f"CreateMultipartUpload {self.key}",
                lambda: ctx.store.create(self.key, src.content_type, src.metadata),
                self._cancelled,
            )
            ctx.journal.start_upload(self.path, upload_id, settings, ctx.clock())
            self._abort_strays(keep=upload_id)
            decision = ResumeDecision(ResumeKind.FRESH, upload_id=upload_id)
            self._emit(EventKind.UPLOAD_STARTED, src)
        else:
            have = sum(len(v) for v in decision.known.values())
            log.info("%s: resuming upload %s (%d parts on the server)", self.path, decision.upload_id, have)
            self._emit(EventKind.UPLOAD_RESUMED, src, reason=f"{have} parts already stored")
        return self._stream(src, settings, decision, started)

    def _stream(self, src: Source, settings: UploadSettings, decision: ResumeDecision, started: float) -> Outcome:
        ctx = self.ctx
        machine = FileUpload(decision)
        gone = threading.Event()  # this pass is over: its part threads stop retrying

        def cancelled() -> bool:
            return gone.is_set() or self._cancelled()

        sender = PartSender(ctx, self.path, self.key, decision.upload_id, cancelled)
        splitter = PartSplitter(settings.plan, settings.header_size)
        have_slot = False
        try:
            for block in src.body():
                self._drain(machine, sender, block=False)
                if not have_slot:
                    ctx.gate.acquire(self._cancelled)
                    have_slot = True
                for part in splitter.feed(block):
                    have_slot = self._dispatch(machine, sender, part, have_slot)
                    del part
                    if not have_slot:  # the rest of this block starts the next buffer: it needs a slot first
                        ctx.gate.acquire(self._cancelled)
                        have_slot = True
                del block
            for part in splitter.finish(src.header()):
                have_slot = self._dispatch(machine, sender, part, have_slot)
                del part
            if have_slot:
                ctx.gate.release()
                have_slot = False
            machine.body_done()
            while machine.outstanding:
                self._drain(machine, sender, block=True)
        except BaseException:
            if have_slot:
                ctx.gate.release()
            gone.set()
            sender.join(timeout=ctx.config.io_timeout_s + 5)
            raise
        parts = machine.completion()
        try:
            ctx.retrying(
                f"CompleteMultipartUpload {self.key}",
                lambda: ctx.store.complete(self.key, decision.upload_id, parts),
                self._cancelled,
            )
        except UploadGone:  # a retried Complete whose first try got through: the HEAD check below decides
            log.info("%s: upload already completed or gone; verifying the object", self.path)
        machine.completed()
        head, _ = ctx.retrying(f"HEAD {self.key}", lambda: ctx.store.head(self.key), self._cancelled)
        problem = "object missing after completion" if head is None else machine.verify(head.size, head.etag)
        ctx.journal.drop_upload(self.path)
        if problem:
            raise _Restart(f"verification failed: {problem}", abort=False)
        sha = src.original_sha256()
        self._check_unchanged(src)
        duration = time.monotonic() - started
        self._emit(
            EventKind.UPLOAD_COMPLETED,
            src,
            stored_bytes=machine.object_size,
            original_sha256=sha,
            duration_s=round(duration, 3),
        )
        log.info("%s: stored as %s (%d bytes, %.1f s)", self.path, self.key, machine.object_size, duration)
        return Outcome(
            Disposition.DONE,
            FileResult(self.path, True, self.key, "", src.original_size, machine.object_size, src.kind),
        )

    def _dispatch(self, machine: FileUpload, sender: PartSender, part: Part, have_slot: bool) -> bool:
        """Hand a produced part to S3 (or skip it); returns whether we still hold a slot."""
        md5 = md5_hex(part.data)
        action = machine.on_part(part.number, md5, len(part.data))
        if action is PartAction.RESTART:
            raise _Restart(machine.restart_reason, abort=True)
        if action is PartAction.SKIP:
            self.ctx.journal.add_part(self.path, StoredPart(part.number, md5, len(part.data), part.offset))
            self.ctx.on_progress(self.path, len(part.data))
            return have_slot
        if not have_slot:
            self.ctx.gate.acquire(self._cancelled)
        sender.send(part.number, part.offset, part.data, md5)
        return False

    def _drain(self, machine: FileUpload, sender: PartSender, block: bool) -> None:
        while True:
            try:
                res = sender.results.get(timeout=0.5) if block else sender.results.get_nowait()
            except queue.Empty:
                if block and self._cancelled():
                    raise Stopped from None
                if block:
                    continue
                return
            if isinstance(res, Acked):
                machine.on_acked(res.part.number, res.part.etag)
                self.ctx.journal.add_part(self.path, res.part)  # fsynced: a part boundary
                self.retries += res.retries
            elif isinstance(res.error, UploadGone):
                raise _Restart(str(res.error), abort=False)
            else:
                raise res.error
            if block:
                return

    def _check_unchanged(self, src: Source) -> None:
        """The object is a consistent snapshot of what was read; if the file changed since, it must not be
        reported as stored (retention would delete a file whose content is not in the store)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise SourceChanged(f"{self.path}: vanished after upload ({exc})") from exc
        fp = src.fingerprint
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (fp.size, fp.mtime_ns, fp.inode):
            raise SourceChanged(f"{self.path}: changed during its upload")

    def _discard_upload(self, abort: bool) -> None:
        """Forget this file's upload in progress (and abort it on the server): the next pass starts fresh."""
        record = self.ctx.journal.upload(self.path)
        if record is None:
            return
        if abort:
            self._abort(record.settings.key, record.upload_id)
        self.ctx.journal.drop_upload(self.path)

    def _abort_strays(self, keep: str) -> None:
        """Abort the other multipart uploads of this key: left by a CreateMultipartUpload whose response was lost
        (the retry made a second one) or by a crash between create and the journal write. The key holds this
        agent's id, so no one else uploads to it. Best effort: without the right to list, the janitor does it."""
        try:
            pending = self.ctx.store.pending_uploads(self.key)
        except TransferError as exc:
            log.info(
                "%s: cannot list pending uploads of %s (%s); leaving strays to the janitor", self.path, self.key, exc
            )
            return
        for stray in pending:
            if stray.key == self.key and stray.upload_id != keep:
                log.info("%s: aborting stray upload %s of %s", self.path, stray.upload_id, self.key)
                self._abort(self.key, stray.upload_id)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.ctx.retrying(
                f"AbortMultipartUpload {key}", lambda: self.ctx.store.abort(key, upload_id), self._cancelled
            )
        except FatalS3Error as exc:
            log.warning("%s: could not abort upload %s: %s", self.path, upload_id, exc)

    def _already_stored(self, src: Source) -> bool:
        """The object exists with the same original size and sha256 (dedup: same recording, one object)."""
        try:
            head = self.ctx.store.head(self.key)
            if head is None or head.metadata.get(META_SIZE) != str(src.original_size):
                return False
            stored = head.metadata.get(META_SHA256, "")
            if not stored and src.header_size and head.size > src.header_size:
                raw = self.ctx.store.read_range(self.key, 0, src.header_size)
                pos = 0

                def read(n: int) -> bytes:
                    nonlocal pos
                    pos += n
                    return raw[pos - n : pos]

                edgf = flacmeta.read_header(read).edgf
                stored = edgf.sha256 if edgf else ""
            return bool(stored) and stored == self._local_sha256()
        except Exception as exc:  # dedup is an optimisation: upload on doubt
            log.info("%s: could not check the existing object (%s); uploading", self.path, exc)
            return False

    def _local_sha256(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            while block := f.read(1 << 20):
                if self._cancelled():
                    raise Stopped
                h.update(block)
        return h.hexdigest()
