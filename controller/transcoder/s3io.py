"""The transcoder's S3 side: a stored object as a ``fleet_audio.source.ByteReader`` (ranged GETs, one streaming
GET for the audio) and a multipart upload over minio 7.2's low-level calls (the same ones the agent uses)."""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error

from fleet_audio.errors import SourceChanged
from fleet_audio.restore import user_metadata
from fleet_audio.source import META_NAME, FileFingerprint

READ_AHEAD = 64 * 1024  # the chunk table is read in small pieces: fetch this much around each
NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound", "NoSuchUpload"}


def is_not_found(exc: Exception) -> bool:
    return isinstance(exc, S3Error) and exc.code in NOT_FOUND


class ObjectReader:
    """Reads of one stored object; ``check_unchanged`` compares its ETag and size with those seen at open."""

    def __init__(self, client: Minio, bucket: str, key: str) -> None:
        self._client, self._bucket, self.label = client, bucket, key
        stat = client.stat_object(bucket, key)
        self.etag = stat.etag or ""
        self.metadata = user_metadata(stat.metadata or {})
        self.fingerprint = FileFingerprint(stat.size or 0, 0, 0)
        self._cache_at, self._cache = 0, b""

    def name_metadata(self) -> str:
        return self.metadata.get(META_NAME) or quote(posixpath.basename(self.label), safe="")

    def check_unchanged(self) -> None:
        try:
            stat = self._client.stat_object(self._bucket, self.label)
        except S3Error as exc:
            raise SourceChanged(f"{self.label}: vanished while reading ({exc.code})") from None
        if (stat.etag or "", stat.size or 0) != (self.etag, self.fingerprint.size):
            raise SourceChanged(f"{self.label}: replaced while reading")

    def _get(self, offset: int, length: int) -> bytes:
        response = self._client.get_object(self._bucket, self.label, offset=offset, length=length)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def pread(self, size: int, offset: int) -> bytes:
        end = offset + size
        if not (self._cache_at <= offset and end <= self._cache_at + len(self._cache)):
            want = min(max(size, READ_AHEAD), self.fingerprint.size - offset)
            self._cache_at, self._cache = offset, self._get(offset, want) if want > 0 else b""
        data = self._cache[offset - self._cache_at : end - self._cache_at]
        if len(data) != size:
            raise SourceChanged(f"{self.label}: short read at {offset} (object shorter than it said)")
        return data

    def blocks(self, start: int, length: int, block: int, hasher: hashlib._Hash) -> Iterator[bytes]:
        """The bytes [start, start+length) in blocks of exactly ``block`` (the last one shorter), one GET."""
        if length <= 0:
            return
        response = self._client.get_object(self._bucket, self.label, offset=start, length=length)
        sent = 0
        try:
            pending = bytearray()
            for piece in response.stream(block):
                pending += piece
                while len(pending) >= block or (pending and sent + len(pending) == length):
                    out = bytes(pending[:block])
                    del pending[: len(out)]
                    hasher.update(out)
                    sent += len(out)
                    yield out
        finally:
            response.close()
            response.release_conn()
        if sent != length:
            raise SourceChanged(f"{self.label}: the object ended after {sent} of {length} bytes")
        self.check_unchanged()

    def close(self) -> None:
        self._cache = b""


class Multipart:
    """One multipart upload: ``create`` (returns the upload id), ``put`` parts in any order, ``complete``."""

    def __init__(self, client: Minio, bucket: str, key: str) -> None:
        self._client, self._bucket, self.key = client, bucket, key
        self.upload_id = ""
        self._etags: dict[int, str] = {}
        self.size = 0

    def create(self, content_type: str, metadata: Mapping[str, str]) -> str:
        headers: dict[str, Any] = {"Content-Type": content_type}
        headers.update({f"x-amz-meta-{k}": v for k, v in metadata.items()})
        self.upload_id = self._client._create_multipart_upload(self._bucket, self.key, headers)
        return self.upload_id

    def put(self, number: int, data: bytes) -> None:
        self._etags[number] = self._client._upload_part(self._bucket, self.key, data, None, self.upload_id, number)
        self.size += len(data)

    def complete(self) -> None:
        parts = [Part(n, self._etags[n]) for n in sorted(self._etags)]
        self._client._complete_multipart_upload(self._bucket, self.key, self.upload_id, parts)


def abort_upload(client: Minio, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload; one the server no longer knows counts as aborted."""
    try:
        client._abort_multipart_upload(bucket, key, upload_id)
    except S3Error as exc:
        if not is_not_found(exc):
            raise


def object_exists(client: Minio, bucket: str, key: str) -> bool:
    try:
        client.stat_object(bucket, key)
    except S3Error as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def remove(client: Minio, bucket: str, key: str) -> None:
    with contextlib.suppress(S3Error):  # S3 DELETE of a missing key succeeds anyway
        client.remove_object(bucket, key)
