"""What a file attempt asks for (commands) and what it is told back (results): h11's events, for one upload.

:class:`edge_agent.engine.attempt.FileAttempt` returns one command at a time; the executor
(:mod:`edge_agent.transfer.job`) runs it against the file, the store and the journal and feeds back exactly one
result. Every command may also be answered with :class:`Failed` (a :class:`Fault` and the error's text).

=====================  =======================================================  ==============================
command                the executor                                             result
=====================  =======================================================  ==============================
``CheckFile``          stats the file, asks the codec whether it is finished    ``Ok``
``LoadRecord``         reads the journal's record of an upload in progress      ``RecordLoaded``
``OpenSource``         opens the source (FLAC or raw) at a compression level    ``SourceOpened``
``ListParts``          asks the server which parts an upload holds              ``PartsListed``
``Abort``              aborts a multipart upload                                ``Ok``
``DropRecord``         forgets the journal's record of the file's upload        ``Ok``
``CheckExisting``      is the object already stored with this recording?        ``Existing``
``CreateUpload``       creates a multipart upload                               ``Created``
``SaveUpload``         writes the new upload's id and settings to the journal   ``Ok``
``ListUploads``        lists the in-progress uploads of a key                   ``UploadsListed``
``Announce``           reports ``upload_started`` / ``upload_resumed``          ``Ok``
``OpenParts``          gets ready to turn the source into parts and send them   ``Ok``
``ReadPart``           produces the next part from the source                   ``PartRead`` / ``BodyRead``
``SendPart``           starts sending the part just read (in the background)   ``Ok``
``SkipPart``           drops the part just read: the server has it (journaled)  ``Ok``
``CollectSends``       reports a finished send (``wait``: block for one)        ``PartSent`` / ``NoneSent``
``SavePart``           writes an acknowledged part to the journal (fsync)       ``Ok``
``CloseParts``         stops the sends still in flight and waits for them       ``Ok``
``Complete``           completes the multipart upload with these parts          ``Ok``
``Head``               HEADs the completed object                               ``ObjectFound`` / ``ObjectMissing``
``ConfirmSource``      hashes the original, checks the file did not change      ``SourceConfirmed``
``StartOver``          closes the source: the next pass opens it again          ``Ok``
``Finish``             the end: settles the queue entry with this outcome       (none)
=====================  =======================================================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings
from fleet_protocol.vocabulary import EventKind


class Fault(Enum):
    """What went wrong, as the executor classifies the error (the outcome is the attempt's table)."""

    NOT_READY = "not_ready"  # the recording is still being written
    REJECTED = "rejected"  # bad input that will never upload (empty, truncated, too large, too many parts)
    VANISHED = "vanished"  # the file is gone
    CHANGED = "changed"  # the file changed while it was read
    STOPPED = "stopped"  # the engine is stopping (or this job was cancelled)
    GONE = "gone"  # NoSuchUpload: our upload was aborted behind our back
    FATAL = "fatal"  # AccessDenied, NoSuchBucket, bad credentials...
    RETRYABLE = "retryable"  # network or server trouble that outlasted ``give_up_after_s``
    UNEXPECTED = "unexpected"  # anything else, where the executor tolerates it (the dedup check)
    # found by the attempt itself:
    PART_DIFFERS = "part_differs"  # the server holds other bytes under a part number we produced
    NOT_VERIFIED = "not_verified"  # the completed object is not the one we uploaded


class Disposition(Enum):
    """What becomes of the file's queue entry."""

    DONE = "done"  # stored and verified (or already there)
    REJECTED = "rejected"  # bad input: never retried unless the file changes
    RETRY = "retry"  # keep queued, try again later (counts as a failure)
    DEFER = "defer"  # not finished yet: look again after settle_s (no failure)
    STOPPED = "stopped"  # the engine stopped: keep queued, no failure


# -- commands ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckFile:
    pass


@dataclass(frozen=True)
class LoadRecord:
    pass


@dataclass(frozen=True)
class OpenSource:
    level: int  # FLAC compression level, -1 = raw


@dataclass(frozen=True)
class ListParts:
    key: str
    upload_id: str


@dataclass(frozen=True)
class Abort:
    key: str
    upload_id: str
    why: str


@dataclass(frozen=True)
class DropRecord:
    pass


@dataclass(frozen=True)
class CheckExisting:
    key: str


@dataclass(frozen=True)
class CreateUpload:
    key: str


@dataclass(frozen=True)
class SaveUpload:
    upload_id: str
    settings: UploadSettings


@dataclass(frozen=True)
class ListUploads:
    key: str


@dataclass(frozen=True)
class Announce:
    kind: EventKind
    reason: str
    retries: int


@dataclass(frozen=True)
class OpenParts:
    key: str
    upload_id: str
    plan: PartPlan
    header_size: int


@dataclass(frozen=True)
class ReadPart:
    pass


@dataclass(frozen=True)
class SendPart:
    number: int


@dataclass(frozen=True)
class SkipPart:
    part: StoredPart


@dataclass(frozen=True)
class CollectSends:
    wait: bool


@dataclass(frozen=True)
class SavePart:
    part: StoredPart


@dataclass(frozen=True)
class CloseParts:
    pass


@dataclass(frozen=True)
class Complete:
    key: str
    upload_id: str
    parts: tuple[tuple[int, str], ...]  # (number, etag), every part in order


@dataclass(frozen=True)
class Head:
    key: str


@dataclass(frozen=True)
class ConfirmSource:
    pass


@dataclass(frozen=True)
class StartOver:
    reason: str
    restarts: int


@dataclass(frozen=True)
class Finish:
    disposition: Disposition
    reason: str = ""  # why it failed, or "already stored"
    retries: int = 0  # part retries over the whole attempt
    stored_bytes: int = 0
    original_sha256: str = ""
    uploaded: bool = False  # DONE by an upload (not by finding the object already stored)


Command = (
    CheckFile | LoadRecord | OpenSource | ListParts | Abort | DropRecord | CheckExisting | CreateUpload
    | SaveUpload | ListUploads | Announce | OpenParts | ReadPart | SendPart | SkipPart | CollectSends | SavePart
    | CloseParts | Complete | Head | ConfirmSource | StartOver | Finish
)  # fmt: skip


# -- results ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class RecordLoaded:
    record: UploadRecord | None


@dataclass(frozen=True)
class SourceOpened:
    key: str  # the object key
    size_bound: int  # the object is at most this big
    header_size: int  # 0 for raw: no held part 1
    fingerprint: tuple[int, int, int]  # size, mtime_ns, inode of the file


@dataclass(frozen=True)
class PartsListed:
    parts: tuple[StoredPart, ...] | None  # None: the server does not know the upload


@dataclass(frozen=True)
class Existing:
    same: bool  # the object exists with this recording's original size and sha256


@dataclass(frozen=True)
class Created:
    upload_id: str


@dataclass(frozen=True)
class UploadsListed:
    upload_ids: tuple[str, ...]  # in-progress uploads of exactly the key asked about


@dataclass(frozen=True)
class PartRead:
    number: int
    offset: int
    md5: str  # lowercase hex
    size: int


@dataclass(frozen=True)
class BodyRead:
    """Every part (part 1 included) has been read."""


@dataclass(frozen=True)
class PartSent:
    part: StoredPart  # as acknowledged: ETag == MD5
    retries: int


@dataclass(frozen=True)
class NoneSent:
    """No send has finished yet (only for ``CollectSends(wait=False)``)."""


@dataclass(frozen=True)
class ObjectFound:
    size: int
    etag: str


@dataclass(frozen=True)
class ObjectMissing:
    pass


@dataclass(frozen=True)
class SourceConfirmed:
    original_sha256: str


@dataclass(frozen=True)
class Failed:
    fault: Fault
    reason: str


Result = (
    Ok | RecordLoaded | SourceOpened | PartsListed | Existing | Created | UploadsListed | PartRead | BodyRead
    | PartSent | NoneSent | ObjectFound | ObjectMissing | SourceConfirmed | Failed
)  # fmt: skip
