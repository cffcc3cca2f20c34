"""One attempt at uploading one file: the executor of :class:`edge_agent.engine.attempt.FileAttempt`.

A loop: ask the machine for a command, run it against the file (the codec), the store and the journal (the
``ports``), feed back the result, until the command is ``Finish``. Errors become ``Failed(fault, text)``
results (:data:`FAULTS`); what they lead to is the machine's table, never decided here. An error of no known
kind is a bug: it leaves the loop and the engine keeps the file queued ("internal error"). The local file is
never touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.engine import commands as c
from edge_agent.engine.attempt import AttemptConfig, FileAttempt
from edge_agent.engine.commands import Disposition, Fault
from edge_agent.engine.events import EngineEvent, FileResult
from edge_agent.engine.partsize import ObjectTooLarge
from edge_agent.engine.splitter import TooManyParts
from edge_agent.transfer.context import ALSO_REPORTED, Context, Source
from edge_agent.transfer.errors import FatalS3Error, RetryableError, TransferError, UploadGone
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.parts import PartStream
from fleet_audio import flacmeta
from fleet_audio.errors import RecordingNotReady, RecordingRejected, SourceChanged
from fleet_audio.source import META_SHA256, META_SIZE, FlacSource
from fleet_protocol.assignment import RAW
from fleet_protocol.vocabulary import EventKind

log = logging.getLogger("edgefleet.upload")
T = TypeVar("T")

#: which errors are which fault (first match wins); any other error is a bug
FAULTS: tuple[tuple[type[BaseException], Fault], ...] = (
    (RecordingNotReady, Fault.NOT_READY),
    (RecordingRejected, Fault.REJECTED),
    (ObjectTooLarge, Fault.REJECTED),
    (TooManyParts, Fault.REJECTED),
    (FileNotFoundError, Fault.VANISHED),
    (SourceChanged, Fault.CHANGED),
    (Stopped, Fault.STOPPED),
    (UploadGone, Fault.GONE),
    (RetryableError, Fault.RETRYABLE),
    (FatalS3Error, Fault.FATAL),
    (TransferError, Fault.FATAL),
)
_KNOWN = tuple(kind for kind, _ in FAULTS)


def fault_of(exc: BaseException) -> Fault | None:
    return next((fault for kind, fault in FAULTS if isinstance(exc, kind)), None)


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    result: FileResult


class FileJob:
    def __init__(self, ctx: Context, path: str) -> None:
        self.ctx = ctx
        self.path = path
        self.cancel = False
        self.key = ""
        self._src: Source | None = None
        self._src_level = RAW  # the file's level (RAW for a raw one), counted in flight in ctx.compression
        self._parts: PartStream | None = None
        self._started = 0.0
        self._run: dict[type[Any], Callable[[Any], c.Result]] = {
            c.CheckFile: self._check_file,
            c.LoadRecord: self._load_record,
            c.OpenSource: self._open_source,
            c.ListParts: self._list_parts,
            c.Abort: self._abort,
            c.DropRecord: self._drop_record,
            c.CheckExisting: self._check_existing,
            c.CreateUpload: self._create,
            c.SaveUpload: self._save_upload,
            c.ListUploads: self._list_uploads,
            c.Announce: self._announce,
            c.OpenParts: self._open_parts,
            c.ReadPart: self._read_part,
            c.SendPart: self._send_part,
            c.SkipPart: self._skip_part,
            c.CollectSends: self._collect,
            c.SavePart: self._save_part,
            c.CloseParts: self._close_parts_command,
            c.Complete: self._complete,
            c.Head: self._head,
            c.ConfirmSource: self._confirm_source,
            c.StartOver: self._start_over,
        }

    def _cancelled(self) -> bool:
        return self.cancel or self.ctx.stop.is_set()

    def run(self) -> Outcome:
        self._started = time.monotonic()
        config, limits = self.ctx.config, self.ctx.effective  # the guard's part size on a thin link
        link = self.ctx.link
        # counted in flight from here; a resumed upload keeps its own level (recounted when its source opens)
        level = self._src_level = self.ctx.compression.start_file(limits, link.rate(), link.sender_held())
        machine = FileAttempt(AttemptConfig(limits.part_size, level, config.restarts_per_attempt, config.dedup))
        try:
            while not isinstance(command := machine.next_command(), c.Finish):
                machine.receive(self._execute(command))
            return self._finish(command)
        finally:
            self._close_parts()
            self._close_source()
            self.ctx.compression.close_file(self._src_level)

    def _execute(self, command: c.Command) -> c.Result:
        try:
            return self._run[type(command)](command)
        except _KNOWN as exc:
            fault = fault_of(exc)
            assert fault is not None
            log.info("%s: %s failed: %s", self.path, type(command).__name__, exc)
            return c.Failed(fault, str(exc))

    # -- the file ------------------------------------------------------------------------------------------
    def _check_file(self, _: c.CheckFile) -> c.Result:
        path = Path(self.path)
        st = path.stat()
        settled = self.ctx.clock() - st.st_mtime_ns / 1e9 >= self.ctx.config.settle_s
        self.ctx.codec.check_finished(path, settled=settled)
        return c.Ok()

    def _open_source(self, command: c.OpenSource) -> c.Result:
        ctx, path = self.ctx, Path(self.path)
        src = self._src = ctx.codec.open_source(path, command.level)
        level = command.level if src.kind == "flac" else RAW
        ctx.compression.recount(self._src_level, level)
        self._src_level = level
        self.key = ctx.codec.object_key(ctx.config.prefix, ctx.config.agent_id, path, src)
        fp = src.fingerprint
        return c.SourceOpened(self.key, src.size_bound, src.header_size, (fp.size, fp.mtime_ns, fp.inode))

    def _source(self) -> Source:
        assert self._src is not None, "the source is not open"
        return self._src

    def _close_source(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def _confirm_source(self, _: c.ConfirmSource) -> c.Result:
        """The object is a consistent snapshot of what was read; if the file changed since, it must not be
        reported as stored (retention would delete a file whose content is not in the store)."""
        src = self._source()
        sha = src.original_sha256()
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise SourceChanged(f"{self.path}: vanished after upload ({exc})") from exc
        fp = src.fingerprint
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (fp.size, fp.mtime_ns, fp.inode):
            raise SourceChanged(f"{self.path}: changed during its upload")
        return c.SourceConfirmed(sha)

    def _start_over(self, command: c.StartOver) -> c.Result:
        log.warning("%s: %s; starting the upload over", self.path, command.reason)
        self._close_parts()
        self._close_source()
        return c.Ok()

    # -- the journal ---------------------------------------------------------------------------------------
    def _load_record(self, _: c.LoadRecord) -> c.Result:
        return c.RecordLoaded(self.ctx.journal.upload(self.path))

    def _drop_record(self, _: c.DropRecord) -> c.Result:
        self.ctx.journal.drop_upload(self.path)
        return c.Ok()

    def _save_upload(self, command: c.SaveUpload) -> c.Result:
        self.ctx.journal.start_upload(self.path, command.upload_id, command.settings, self.ctx.clock())
        return c.Ok()

    def _save_part(self, command: c.SavePart) -> c.Result:
        self.ctx.journal.add_part(self.path, command.part)  # fsynced: a part boundary
        return c.Ok()

    # -- the store -----------------------------------------------------------------------------------------
    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        return self.ctx.retrying(what, fn, self._cancelled)[0]

    def _list_parts(self, command: c.ListParts) -> c.Result:
        parts = self._retrying("ListParts", lambda: self.ctx.store.list_parts(command.key, command.upload_id))
        return c.PartsListed(None if parts is None else tuple(parts))

    def _abort(self, command: c.Abort) -> c.Result:
        log.info("%s: %s: aborting upload %s", self.path, command.why, command.upload_id)
        store = self.ctx.store
        self._retrying(f"AbortMultipartUpload {command.key}", lambda: store.abort(command.key, command.upload_id))
        return c.Ok()

    def _create(self, command: c.CreateUpload) -> c.Result:
        src, store = self._source(), self.ctx.store
        what = f"CreateMultipartUpload {command.key}"
        return c.Created(self._retrying(what, lambda: store.create(command.key, src.content_type, src.metadata)))

    def _list_uploads(self, command: c.ListUploads) -> c.Result:
        """The key holds this agent's id, so no one else uploads to it: every other upload of it is a stray."""
        pending = self.ctx.store.pending_uploads(command.key)
        return c.UploadsListed(tuple(p.upload_id for p in pending if p.key == command.key))

    def _complete(self, command: c.Complete) -> c.Result:
        store, parts = self.ctx.store, list(command.parts)
        what = f"CompleteMultipartUpload {command.key}"
        self._retrying(what, lambda: store.complete(command.key, command.upload_id, parts))
        return c.Ok()

    def _head(self, command: c.Head) -> c.Result:
        head = self._retrying(f"HEAD {command.key}", lambda: self.ctx.store.head(command.key))
        return c.ObjectMissing() if head is None else c.ObjectFound(head.size, head.etag)

    def _check_existing(self, command: c.CheckExisting) -> c.Result:
        """The object exists with the same original size and sha256 (dedup: same recording, one object)."""
        try:
            stored = self._stored_sha256(command.key)
            return c.Existing(stored is not None and stored == self._local_sha256())
        except Exception as exc:  # whatever it is, the attempt's table decides (it uploads)
            log.info("%s: could not check the existing object (%s); uploading", self.path, exc)
            return c.Failed(fault_of(exc) or Fault.UNEXPECTED, str(exc))

    def _stored_sha256(self, key: str) -> str | None:
        """The original sha256 the stored object records (user metadata, else the FLAC header's ``edgf``
        block); None when there is no object of this recording's size."""
        src = self._source()
        head = self.ctx.store.head(key)
        if head is None or head.metadata.get(META_SIZE) != str(src.original_size):
            return None
        stored = head.metadata.get(META_SHA256, "")
        if not stored and src.header_size and head.size > src.header_size:
            raw = self.ctx.store.read_range(key, 0, src.header_size)
            pos = 0

            def read(n: int) -> bytes:
                nonlocal pos
                pos += n
                return raw[pos - n : pos]

            edgf = flacmeta.read_header(read).edgf
            stored = edgf.sha256 if edgf else ""
        return stored or None

    def _local_sha256(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            while block := f.read(1 << 20):
                if self._cancelled():
                    raise Stopped
                h.update(block)
        return h.hexdigest()

    # -- the parts -----------------------------------------------------------------------------------------
    def _open_parts(self, command: c.OpenParts) -> c.Result:
        self._close_parts()
        sender = (self.path, command.key, command.upload_id)
        self._parts = PartStream(self.ctx, self._source(), sender, command.plan, self._cancelled)
        return c.Ok()

    def _stream(self) -> PartStream:
        assert self._parts is not None, "the parts are not open"
        return self._parts

    def _close_parts(self) -> None:
        if self._parts is not None:
            self._parts.close()
            self._parts = None

    def _close_parts_command(self, _: c.CloseParts) -> c.Result:
        self._close_parts()
        return c.Ok()

    def _read_part(self, _: c.ReadPart) -> c.Result:
        read = self._stream().read()
        if read is None:
            return c.BodyRead()
        part, md5 = read
        return c.PartRead(part.number, part.offset, md5, len(part.data))

    def _send_part(self, command: c.SendPart) -> c.Result:
        self._stream().send(command.number)
        return c.Ok()

    def _skip_part(self, command: c.SkipPart) -> c.Result:
        self._stream().skip(command.part.number)
        self.ctx.journal.add_part(self.path, command.part)
        self.ctx.on_progress(self.path, command.part.size)
        return c.Ok()

    def _collect(self, command: c.CollectSends) -> c.Result:
        sent = self._stream().collect(command.wait)
        if sent is None:
            return c.NoneSent()
        if isinstance(sent, c.PartSent):
            return sent
        raise sent.error  # a fault, or a bug in the sender

    # -- reporting -----------------------------------------------------------------------------------------
    def _emit(self, kind: EventKind, retries: int, **kw: Any) -> None:
        event = EngineEvent(kind=kind, file=self.path, key=self.key, retries=retries)
        if self._src is not None:
            event = replace(event, original_bytes=self._src.original_size, stored_as=self._src.kind)
        self.ctx.emit(replace(event, **kw))

    def _announce(self, command: c.Announce) -> c.Result:
        if command.reason:
            log.info("%s: %s: %s", self.path, command.kind.value, command.reason)
        self._emit(command.kind, command.retries, reason=command.reason)
        return c.Ok()

    def _finish(self, finish: c.Finish) -> Outcome:
        if finish.disposition is not Disposition.DONE:
            return self._fail(finish)
        src = self._source()
        if finish.uploaded:
            duration = time.monotonic() - self._started
            self._emit(
                EventKind.UPLOAD_COMPLETED,
                finish.retries,
                stored_bytes=finish.stored_bytes,
                original_sha256=finish.original_sha256,
                duration_s=round(duration, 3),
            )
            log.info("%s: stored as %s (%d bytes, %.1f s)", self.path, self.key, finish.stored_bytes, duration)
            self.ctx.compression.file_stored(finish.stored_bytes, duration, self.ctx.link.rate_so_far())
            if isinstance(src, FlacSource):  # a sample for the encode-rate estimate (engine.encoderate)
                self.ctx.compression.observe(
                    src.compression_level, src.encoded_bytes, src.encode_seconds, finish.stored_bytes, src.original_size
                )
        else:
            self._emit(EventKind.UPLOAD_COMPLETED, finish.retries, reason=finish.reason, duration_s=0.0)
        result = FileResult(
            self.path, True, self.key, finish.reason, src.original_size, finish.stored_bytes, src.kind, src.raw_reason
        )
        return Outcome(Disposition.DONE, result)

    def _fail(self, finish: c.Finish) -> Outcome:
        disposition, reason = finish.disposition, finish.reason
        kind = EventKind.FILE_REJECTED if disposition is Disposition.REJECTED else EventKind.UPLOAD_FAILED
        if disposition is not Disposition.STOPPED:
            with self.ctx.counters.lock:
                self.ctx.counters.errors_total += 1
            self._emit(kind, finish.retries, reason=reason)
            log.warning("%s", reason if self.path in reason else f"{self.path}: {reason}", extra=ALSO_REPORTED)
        return Outcome(disposition, FileResult(self.path, False, self.key, reason))
