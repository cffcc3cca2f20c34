"""S3 multipart calls over minio 7.2's low-level API (pinned <8: these private calls change in 8.0).

A thin adapter: every method is one S3 request, errors are mapped by :func:`errors.classify`. Retries are NOT
done here (nor inside urllib3): the engine decides, with backoff. There is no whole-request timeout: every
request runs under a :class:`edge_agent.transfer.wire.Watch`, which fails it as a retryable stall when no
byte was written or acknowledged for ``stall_timeout_s`` (and a part also past its deadline); a part's bytes
are paced through its :class:`~edge_agent.transfer.ports.PartTap` as they are written. The small requests' times
to first byte (``wire.Watch.first_byte_s``) are kept for the agent's telemetry (``first_byte_s``).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.datatypes import Part as MinioPart
from minio.error import S3Error

from edge_agent.engine.linkguard import STALL_TIMEOUT_S
from edge_agent.engine.upload import StoredPart
from edge_agent.transfer import wire
from edge_agent.transfer.errors import RetryableError, UploadGone, classify
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.latency import RecentLatency
from edge_agent.transfer.ports import ObjectHead, PartTap, PendingUpload
from fleet_base.s3settings import S3Settings

T = TypeVar("T")


def _http_client(settings: S3Settings, stall_timeout_s: float, pool: int) -> urllib3.PoolManager:
    """Verifies https servers against ``settings.ca_certs`` (the configured private CA, else the defaults); every
    connection is one of the wire's, which paces and watches what is written."""
    manager = settings.http_pool(
        # per socket operation: connect, and each read of an answer (writes are watched by the wire)
        timeout=urllib3.Timeout(connect=stall_timeout_s, read=stall_timeout_s),
        maxsize=pool,
        retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
    )
    manager.pool_classes_by_scheme = dict(wire.POOL_CLASSES)
    return manager


class S3Store:
    """The :class:`edge_agent.transfer.ports.Store` of a real S3 server."""

    def __init__(self, settings: S3Settings, stall_timeout_s: float = STALL_TIMEOUT_S, pool: int = 64) -> None:
        self.bucket = settings.bucket
        self._stall_timeout_s = stall_timeout_s
        self.first_byte = RecentLatency()
        self._client = Minio(
            settings.netloc,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=_http_client(settings, stall_timeout_s, pool),
        )

    def _call(self, fn: Callable[[], T], tap: PartTap | None = None) -> T:
        """One request under a watch; its errors as the transfer error tree (a stall is retryable)."""
        with wire.watching(self._stall_timeout_s, tap) as watch:
            try:
                return fn()
            except Stopped:
                raise
            except Exception as exc:
                if watch.fault is not None:
                    raise RetryableError(watch.fault) from exc
                raise classify(exc) from exc
            finally:
                if watch.first_byte_s is not None:  # an answer came (an error answer too)
                    self.first_byte.add(watch.first_byte_s)

    def first_byte_s(self) -> float | None:
        """The median time to first byte of the recent small requests (``None``: none lately)."""
        return self.first_byte.median()

    def create(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        headers: dict[str, Any] = {"Content-Type": content_type}
        headers.update({f"x-amz-meta-{k}": v for k, v in metadata.items()})
        # a copy: minio mutates the headers
        return self._call(lambda: self._client._create_multipart_upload(self.bucket, key, dict(headers)))

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray, md5_hex: str, tap: PartTap | None = None
    ) -> str:
        headers: dict[str, Any] = {"Content-MD5": base64.b64encode(bytes.fromhex(md5_hex)).decode()}
        etag = self._call(
            lambda: self._client._upload_part(self.bucket, key, cast(bytes, data), headers, upload_id, number), tap
        )
        return etag.strip('"').lower()

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """All parts of the upload (paginated); None when the server does not know the upload."""

        def pages() -> list[StoredPart]:
            parts: list[StoredPart] = []
            marker: str | None = None
            while True:
                result = self._client._list_parts(self.bucket, key, upload_id, part_number_marker=marker)
                parts += [StoredPart(p.part_number, p.etag.strip('"').lower(), p.size or 0) for p in result.parts]
                if not result.is_truncated or not result.next_part_number_marker:
                    return parts
                marker = result.next_part_number_marker

        try:
            return self._call(pages)
        except UploadGone:
            return None

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        listed = [MinioPart(n, etag) for n, etag in parts]
        self._call(lambda: self._client._complete_multipart_upload(self.bucket, key, upload_id, listed))

    def abort(self, key: str, upload_id: str) -> None:
        """An upload the server does not know counts as aborted."""
        with contextlib.suppress(UploadGone):
            self._call(lambda: self._client._abort_multipart_upload(self.bucket, key, upload_id))

    def head(self, key: str) -> ObjectHead | None:
        def stat() -> Object | None:
            try:
                return self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise

        found = self._call(stat)
        if found is None:
            return None
        meta = {
            k.lower().removeprefix("x-amz-meta-"): v
            for k, v in (found.metadata or {}).items()
            if k.lower().startswith("x-amz-meta-")
        }
        return ObjectHead(size=found.size or 0, etag=(found.etag or "").strip('"').lower(), metadata=meta)

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Multipart uploads in progress under ``prefix`` (paginated by key marker: minio 7.2 never sets
        ``next_upload_id_marker``)."""

        def pages() -> list[PendingUpload]:
            found: list[PendingUpload] = []
            key_marker: str | None = None
            while True:
                result = self._client._list_multipart_uploads(self.bucket, prefix=prefix, key_marker=key_marker)
                found += [PendingUpload(u.object_name or "", u.upload_id or "") for u in result.uploads]
                if not result.is_truncated or not result.next_key_marker or result.next_key_marker == key_marker:
                    return found
                key_marker = result.next_key_marker

        return self._call(pages)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        def read() -> bytes:
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return self._call(read)
