"""The seams of the transfer layer: what the scheduler and the executor need from the object store and the journal.

The real ones are :class:`edge_agent.transfer.s3.S3Store` and :class:`edge_agent.transfer.journal.Journal`, wired
by :func:`edge_agent.transfer.bootstrap.open_engine`; unit tests pass tiny in-memory fakes.

Store errors are :mod:`edge_agent.transfer.errors`: ``RetryableError`` (retried with backoff), ``UploadGone``
(NoSuchUpload) and ``FatalS3Error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge_agent.engine.queue import QueueEntry
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str
    metadata: Mapping[str, str]  # user metadata, keys lower-case without x-amz-meta-


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str


@runtime_checkable
class TimesFirstByte(Protocol):
    """A store that measures its time to first byte (the real one does; the fakes need not)."""

    def first_byte_s(self) -> float | None: ...


class PartTap(Protocol):
    """The engine's side of one UploadPart request: the store writes the part's bytes through it.

    The store writes at most ``quantum()`` bytes after each ``pace(n)`` (0 = no cap: no pacing), stops the
    request when ``cancelled()`` turns true and fails it when it runs past ``deadline_s`` (see
    :mod:`edge_agent.transfer.link`, which makes them). Once every byte is written and acknowledged, only the
    deadline bounds the wait for the answer.
    """

    @property
    def deadline_s(self) -> float | None:
        """The whole request may take this long; None = no deadline (then the stall timer also bounds the wait
        for the answer)."""
        ...

    @property
    def carry_bps(self) -> float | None:
        """The rate at which the link is assumed to pass this request's written bytes on: the stall timer does
        not start before it could have passed them all (:func:`edge_agent.engine.linkguard.stall_clock_start`);
        None = the plain stall timer."""
        ...

    def quantum(self) -> int: ...
    def pace(self, nbytes: int) -> None:
        """Returns when ``nbytes`` may be written (the engine's shared token bucket); raises ``Stopped``."""
        ...

    def cancelled(self) -> bool: ...


class Store(Protocol):
    """S3 multipart calls, one request each; no retries inside."""

    def create(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str: ...
    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray, md5_hex: str, tap: PartTap | None = None
    ) -> str:
        """Returns the part's ETag (lowercase hex, no quotes). The bytes go through ``tap`` (pacing, progress)."""
        ...

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """All parts of the upload; None when the server does not know it."""
        ...

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None: ...
    def abort(self, key: str, upload_id: str) -> None:
        """An upload the server does not know counts as aborted."""
        ...

    def head(self, key: str) -> ObjectHead | None: ...
    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]: ...
    def read_range(self, key: str, offset: int, length: int) -> bytes: ...


class Journal(Protocol):
    """The durable queue and the uploads in progress; every write is on disk when the call returns."""

    # the queue
    def enqueue(self, path: str, size: int, mtime_ns: int, now: float, recheck: bool) -> bool: ...
    def queued(self) -> list[QueueEntry]: ...
    def update_entry(self, entry: QueueEntry, reason: str) -> None: ...
    def finish_entry(self, path: str, status: str, key: str, reason: str) -> None: ...
    def status(self, path: str) -> tuple[str, str, str] | None: ...

    # the upload in progress of a file
    def upload(self, path: str) -> UploadRecord | None: ...
    def start_upload(self, path: str, upload_id: str, settings: UploadSettings, now: float) -> None: ...
    def add_part(self, path: str, part: StoredPart) -> None: ...
    def drop_upload(self, path: str) -> None: ...

    def close(self) -> None: ...
