"""The codec's exception tree.

RecordingNotReady   still being written: try again later (retryable)
RecordingRejected   bad input that will never upload (empty, truncated, unreadable): report, keep the file
SourceChanged       the file changed or vanished while it was read: abort this upload, retry later
RestoreError        a stored object does not rebuild the original (bad object, size or sha256 mismatch)
  NotOurObject      the object was not written by edgefleet (no format metadata, not an edgefleet FLAC)
"""

from __future__ import annotations


class RecordingNotReady(Exception):
    """The recording is still being written (RIFF sizes 0/0xFFFFFFFF or disagreeing with the file size)."""


class RecordingRejected(Exception):
    """Bad input that will never upload as FLAC nor raw (empty file, truncated, unreadable)."""


class SourceChanged(Exception):
    """The file changed or vanished while it was being read."""


class RestoreError(Exception):
    """A stored object is malformed or does not give back the original bytes."""


class NotOurObject(RestoreError):
    """The object was not written by edgefleet: there is no original to rebuild (``--raw`` takes it as stored)."""
