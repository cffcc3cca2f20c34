"""Tiny in-memory fakes of the transfer ports (edge_agent/transfer/ports.py): an S3 store and a journal.

``FakeStore.plan(op)`` decides what each call does: ``None`` (it works), ``"drop"`` (a network error before
it takes effect), ``"lost"`` (it takes effect, then the response is lost), ``"fatal"`` (AccessDenied),
``"gone"`` (a janitor aborts the call's upload first), ``"bug"`` (an error of no known kind).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from edge_agent.engine.queue import QueueEntry
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings, multipart_etag
from edge_agent.engine.upload import md5_hex as md5_of
from edge_agent.transfer.errors import FatalS3Error, RetryableError, UploadGone
from edge_agent.transfer.journal import QUEUED
from edge_agent.transfer.ports import ObjectHead, PartTap, PendingUpload

T = TypeVar("T")


@dataclass
class FakeUpload:
    key: str
    metadata: dict[str, str]
    parts: list[tuple[int, str, bytes]] = field(default_factory=list)  # as sent: a number may be there twice


@dataclass(frozen=True)
class FakeObject:
    data: bytes
    etag: str
    metadata: Mapping[str, str]


class FakeStore:
    def __init__(self) -> None:
        self.uploads: dict[str, FakeUpload] = {}
        self.objects: dict[str, FakeObject] = {}
        self.calls: list[str] = []
        self.completions: list[tuple[str, str, tuple[tuple[int, str], ...]]] = []
        self.invalid: list[str] = []  # completions naming a part the upload does not hold
        self.sent: list[int] = []  # part numbers in the order they arrived
        self.taps: list[PartTap] = []  # the engine's tap of each part that arrived
        self.plan: Callable[[str], str | None] = lambda op: None
        self._ids = itertools.count(1)
        self._lock = threading.RLock()  # parts arrive from several threads

    def _call(self, op: str, effect: Callable[[], T], upload_id: str = "") -> T:
        with self._lock:
            self.calls.append(op)
            fault = self.plan(op)
            if fault == "drop":
                raise RetryableError(f"S3 unreachable: {op} dropped")
            if fault == "fatal":
                raise FatalS3Error(f"S3 AccessDenied: {op}")
            if fault == "bug":
                raise RuntimeError(f"a bug in {op}")
            if fault == "gone":
                self.uploads.pop(upload_id, None)
            result = effect()
            if fault == "lost":
                raise RetryableError(f"S3 unreachable: the response to {op} was lost")
            return result

    def _upload(self, upload_id: str) -> FakeUpload:
        if upload_id not in self.uploads:
            raise UploadGone(f"upload no longer exists: {upload_id}")
        return self.uploads[upload_id]

    def create(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        def effect() -> str:
            upload_id = f"upload-{next(self._ids)}"
            self.uploads[upload_id] = FakeUpload(key, dict(metadata))
            return upload_id

        return self._call("create", effect)

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray, md5_hex: str, tap: PartTap | None = None
    ) -> str:
        def effect() -> str:
            etag = md5_of(data)
            self._upload(upload_id).parts.append((number, etag, bytes(data)))
            self.sent.append(number)
            if tap is not None:
                self.taps.append(tap)
            return etag

        return self._call("upload_part", effect, upload_id)

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        def effect() -> list[StoredPart] | None:
            upload = self.uploads.get(upload_id)
            return None if upload is None else [StoredPart(n, e, len(d)) for n, e, d in upload.parts]

        return self._call("list_parts", effect, upload_id)

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        def effect() -> None:
            upload = self._upload(upload_id)
            chosen = []
            for number, etag in parts:
                data = next((d for n, e, d in upload.parts if (n, e) == (number, etag)), None)
                if data is None:
                    self.invalid.append(f"{upload_id}: part {number}")
                    raise FatalS3Error(f"S3 InvalidPart: part {number} with ETag {etag}")
                chosen.append(data)
            etag = multipart_etag(e for _, e in parts)
            self.objects[key] = FakeObject(b"".join(chosen), etag, upload.metadata)
            self.completions.append((key, upload_id, tuple(parts)))
            del self.uploads[upload_id]

        self._call("complete", effect, upload_id)

    def abort(self, key: str, upload_id: str) -> None:
        self._call("abort", lambda: self.uploads.pop(upload_id, None), upload_id)

    def head(self, key: str) -> ObjectHead | None:
        def effect() -> ObjectHead | None:
            obj = self.objects.get(key)
            return None if obj is None else ObjectHead(len(obj.data), obj.etag, obj.metadata)

        return self._call("head", effect)

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        def effect() -> list[PendingUpload]:
            return [PendingUpload(u.key, i) for i, u in self.uploads.items() if u.key.startswith(prefix)]

        return self._call("pending_uploads", effect)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        return self._call("read_range", lambda: self.objects[key].data[offset : offset + length])


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    enqueued_at: float
    failures: int = 0
    not_before: float = 0.0
    status: str = QUEUED
    key: str = ""
    reason: str = ""


class FakeJournal:
    """The journal in dicts: the queue and the uploads in progress (a ``transfer.ports.Journal``)."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.records: dict[str, UploadRecord] = {}
        self.closed = False
        self._lock = threading.Lock()

    def enqueue(self, path: str, size: int, mtime_ns: int, now: float, recheck: bool) -> bool:
        old = self.entries.get(path)
        if old is not None and old.status != QUEUED and not recheck and (old.size, old.mtime_ns) == (size, mtime_ns):
            return False
        if old is not None and old.status == QUEUED:
            old.size, old.mtime_ns = size, mtime_ns
        else:
            self.entries[path] = _Entry(size, mtime_ns, now)
        return True

    def queued(self) -> list[QueueEntry]:
        return [
            QueueEntry(p, e.size, e.enqueued_at, e.failures, e.not_before)
            for p, e in list(self.entries.items())
            if e.status == QUEUED
        ]

    def update_entry(self, entry: QueueEntry, reason: str) -> None:
        e = self.entries[entry.path]
        e.failures, e.not_before, e.reason = entry.failures, entry.not_before, reason

    def finish_entry(self, path: str, status: str, key: str, reason: str) -> None:
        e = self.entries[path]
        e.status, e.key, e.reason = status, key, reason

    def status(self, path: str) -> tuple[str, str, str] | None:
        e = self.entries.get(path)
        return None if e is None else (e.status, e.key, e.reason)

    def upload(self, path: str) -> UploadRecord | None:
        return self.records.get(path)

    def start_upload(self, path: str, upload_id: str, settings: UploadSettings, now: float) -> None:
        self.records[path] = UploadRecord(upload_id, settings)

    def add_part(self, path: str, part: StoredPart) -> None:
        with self._lock:
            record = self.records.get(path)
            if record is None:  # like SQLite: a part row without its upload row is never read
                return
            parts = {p.number: p for p in record.parts} | {part.number: part}
            self.records[path] = UploadRecord(record.upload_id, record.settings, tuple(sorted(parts.values(), key=_n)))

    def drop_upload(self, path: str) -> None:
        self.records.pop(path, None)

    def close(self) -> None:
        self.closed = True


def _n(part: StoredPart) -> int:
    return part.number
