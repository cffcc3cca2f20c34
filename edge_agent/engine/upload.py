"""The values and rules of one multipart upload (no I/O): its settings, the journal's record of it, the resume
decision and the ledger of its parts. The order of things is :mod:`edge_agent.engine.attempt`'s.

Rules it keeps:
1. A journal record is only reused when the settings it was made with (object key, part plan, header size,
   compression level, source fingerprint) equal the current ones; otherwise its upload is aborted and a fresh
   one is created ("settings changed" / "file changed").
2. The server's ListParts is the truth: a part counts as stored only when the server lists its number with an
   ETag equal to the MD5 of the bytes we produce now. SeaweedFS can list one number twice (re-upload): any
   matching entry counts. A listed number with no matching ETag means our output differs from what was
   stored: the upload starts over cleanly (abort, new upload, re-encode from the start, nothing skipped).
3. A part number the server does not list is uploaded. Parts stay in memory until acknowledged.
4. The upload is completed with exactly the parts we produced, by number, with their ETags; then the object
   is verified by HEAD: its size must equal the bytes we produced and its ETag the multipart ETag computed
   from our part MD5s. Only then is the file reported completed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from edge_agent.engine.partsize import PartPlan


class LocalProtocolError(RuntimeError):
    """The caller drove the machine wrongly (our bug, never the peer's)."""


@dataclass(frozen=True)
class UploadSettings:
    """Everything that must be equal for stored parts to be reusable."""

    key: str
    plan: PartPlan
    header_size: int
    compression_level: int
    fingerprint: tuple[int, int, int]  # size, mtime_ns, inode of the source file


@dataclass(frozen=True)
class StoredPart:
    number: int
    etag: str  # lowercase hex MD5, no quotes
    size: int
    offset: int = 0  # object offset (journal only; the server does not know it)


@dataclass(frozen=True)
class UploadRecord:
    """What the journal holds for an upload in progress."""

    upload_id: str
    settings: UploadSettings
    parts: tuple[StoredPart, ...] = ()


class ResumeKind(Enum):
    FRESH = "fresh"  # create a new upload
    RESUME = "resume"  # keep the upload id, skip parts the server has
    ABORT_THEN_FRESH = "abort_then_fresh"  # abort the recorded upload, then create a new one


@dataclass(frozen=True)
class ResumeDecision:
    kind: ResumeKind
    upload_id: str = ""
    known: Mapping[int, frozenset[str]] = field(default_factory=dict)  # server parts: number -> ETags
    reason: str = ""


def decide_resume(
    record: UploadRecord | None, settings: UploadSettings, server_parts: Iterable[StoredPart] | None
) -> ResumeDecision:
    """``server_parts``: the server's ListParts for ``record.upload_id``; None when the server does not know it."""
    if record is None:
        return ResumeDecision(ResumeKind.FRESH, reason="new upload")
    if record.settings != settings:
        why = "file changed" if record.settings.fingerprint != settings.fingerprint else "settings changed"
        return ResumeDecision(ResumeKind.ABORT_THEN_FRESH, upload_id=record.upload_id, reason=why)
    if server_parts is None:
        return ResumeDecision(ResumeKind.FRESH, reason="upload no longer exists on the server")
    known: dict[int, set[str]] = {}
    for p in server_parts:
        known.setdefault(p.number, set()).add(p.etag.strip('"').lower())
    frozen = {n: frozenset(e) for n, e in known.items()}
    return ResumeDecision(ResumeKind.RESUME, upload_id=record.upload_id, known=frozen, reason="resume")


class PartAction(Enum):
    UPLOAD = "upload"
    SKIP = "skip"  # the server already has exactly these bytes
    RESTART = "restart"  # the server has other bytes under this number


def md5_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def multipart_etag(part_md5s: Iterable[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the concatenated binary part MD5s, ``-`` part count."""
    digests = [bytes.fromhex(m) for m in part_md5s]
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


class PartLedger:
    """The parts of one upload: what the server already holds (on resume), what we produced, what it acknowledged.

    It decides per part (rules 2 and 3), builds the completion and checks the stored object (rule 4). It has no
    lifecycle of its own: :class:`edge_agent.engine.attempt.FileAttempt` owns the order of things.
    """

    def __init__(self, known: Mapping[int, frozenset[str]] | None = None) -> None:
        self._known: Mapping[int, frozenset[str]] = known or {}  # server parts: number -> ETags
        self._md5: dict[int, str] = {}  # every part we produced: number -> md5
        self._size: dict[int, int] = {}
        self._acked: dict[int, str] = {}  # number -> etag
        self._body_done = False
        self.skipped_bytes = 0
        self.restart_reason = ""

    @classmethod
    def for_decision(cls, decision: ResumeDecision) -> PartLedger:
        """A fresh upload ignores what the server lists; a resumed one skips what it already holds."""
        if decision.kind is ResumeKind.ABORT_THEN_FRESH:
            raise LocalProtocolError("abort the old upload and start from a FRESH decision")
        return cls(decision.known if decision.kind is ResumeKind.RESUME else None)

    def on_part(self, number: int, md5: str, size: int) -> PartAction:
        if self.restart_reason:
            raise LocalProtocolError(f"part {number} produced after the upload had to start over")
        if self._body_done:
            raise LocalProtocolError(f"part {number} produced after the body ended")
        if number in self._md5:
            raise LocalProtocolError(f"part {number} produced twice")
        etags = self._known.get(number)
        if etags is not None and md5 not in etags:
            self.restart_reason = f"part {number} on the server differs from the re-encoded bytes"
            return PartAction.RESTART
        self._md5[number] = md5
        self._size[number] = size
        if etags is None:
            return PartAction.UPLOAD
        self._acked[number] = md5
        self.skipped_bytes += size
        return PartAction.SKIP

    def on_acked(self, number: int, etag: str) -> None:
        if number not in self._md5 or number in self._acked:
            raise LocalProtocolError(f"unexpected ack for part {number}")
        etag = etag.strip('"').lower()
        if etag != self._md5[number]:
            # the sender checks the ETag against the MD5 and retries the part: a different one cannot get here
            raise LocalProtocolError(f"part {number}: acknowledged ETag {etag} != MD5 {self._md5[number]}")
        self._acked[number] = etag

    def body_done(self) -> None:
        """All parts (part 1 included) have been produced."""
        if 1 not in self._md5:
            raise LocalProtocolError("body done before part 1 was produced")
        numbers = sorted(self._md5)
        if numbers != list(range(1, len(numbers) + 1)):
            raise LocalProtocolError(f"parts are not contiguous: {numbers[:5]}...")
        self._body_done = True

    @property
    def body_is_done(self) -> bool:
        return self._body_done

    @property
    def outstanding(self) -> int:
        return len(self._md5) - len(self._acked)

    def completion(self) -> tuple[tuple[int, str], ...]:
        """(number, etag) for CompleteMultipartUpload: every part, acknowledged."""
        if not self._body_done:
            raise LocalProtocolError("completion before the body ended")
        if self.outstanding:
            raise LocalProtocolError(f"{self.outstanding} parts not acknowledged yet")
        return tuple((n, self._acked[n]) for n in sorted(self._acked))

    @property
    def object_size(self) -> int:
        return sum(self._size.values())

    @property
    def expected_etag(self) -> str:
        return multipart_etag(self._md5[n] for n in sorted(self._md5))

    def verify(self, size: int, etag: str) -> str:
        """Check HEAD of the completed object; returns "" when it is ours, else why not."""
        etag = etag.strip('"').lower()
        if size != self.object_size:
            return f"stored size {size} != uploaded {self.object_size}"
        if etag != self.expected_etag:
            return f"stored ETag {etag} != expected {self.expected_etag}"
        return ""
