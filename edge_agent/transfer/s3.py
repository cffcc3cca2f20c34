"""S3 multipart calls over minio 7.2's low-level API (pinned <8: these private calls change in 8.0).

A thin adapter: every method is one S3 request, errors are mapped by :func:`errors.classify`. Retries are NOT
done here (nor inside urllib3): the engine decides, with backoff. The HTTP timeout is what turns a stalled
connection into a retryable error; note that Python applies a socket timeout to a whole ``sendall``, so it
must be longer than sending one part takes on the slowest link.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, cast

import urllib3
from minio import Minio
from minio.datatypes import Part as MinioPart
from minio.error import S3Error

from edge_agent.engine.upload import StoredPart
from edge_agent.transfer.errors import UploadGone, classify
from edge_agent.transfer.ports import ObjectHead, PendingUpload
from fleet_base.s3settings import S3Settings


def _http_client(settings: S3Settings, timeout_s: float, pool: int) -> urllib3.PoolManager:
    """Verifies https servers against ``settings.ca_certs`` (the configured private CA, else the defaults)."""
    return settings.http_pool(
        # urllib3 keeps the CONNECT timeout on the socket while the request body is sent: it must be as long
        # as sending a whole part takes, not a short connect timeout.
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        maxsize=pool,
        retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
    )


class S3Store:
    """The :class:`edge_agent.transfer.ports.Store` of a real S3 server."""

    def __init__(self, settings: S3Settings, timeout_s: float = 120.0, pool: int = 64) -> None:
        self.bucket = settings.bucket
        self._client = Minio(
            settings.netloc,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=_http_client(settings, timeout_s, pool),
        )

    def create(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        headers: dict[str, Any] = {"Content-Type": content_type}
        headers.update({f"x-amz-meta-{k}": v for k, v in metadata.items()})
        try:
            return self._client._create_multipart_upload(self.bucket, key, dict(headers))  # copy: it mutates
        except Exception as exc:
            raise classify(exc) from exc

    def upload_part(self, key: str, upload_id: str, number: int, data: bytearray, md5_hex: str) -> str:
        md5_b64 = base64.b64encode(bytes.fromhex(md5_hex)).decode()
        try:
            etag = self._client._upload_part(
                self.bucket, key, cast(bytes, data), {"Content-MD5": md5_b64}, upload_id, number
            )
        except Exception as exc:
            raise classify(exc) from exc
        return etag.strip('"').lower()

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """All parts of the upload (paginated); None when the server does not know the upload."""
        parts: list[StoredPart] = []
        marker: str | None = None
        try:
            while True:
                result = self._client._list_parts(self.bucket, key, upload_id, part_number_marker=marker)
                parts += [StoredPart(p.part_number, p.etag.strip('"').lower(), p.size or 0) for p in result.parts]
                if not result.is_truncated or not result.next_part_number_marker:
                    return parts
                marker = result.next_part_number_marker
        except Exception as exc:
            err = classify(exc)
            if isinstance(err, UploadGone):
                return None
            raise err from exc

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        try:
            self._client._complete_multipart_upload(
                self.bucket, key, upload_id, [MinioPart(n, etag) for n, etag in parts]
            )
        except Exception as exc:
            raise classify(exc) from exc

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except Exception as exc:
            err = classify(exc)
            if not isinstance(err, UploadGone):
                raise err from exc

    def head(self, key: str) -> ObjectHead | None:
        try:
            stat = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise classify(exc) from exc
        except Exception as exc:
            raise classify(exc) from exc
        meta = {
            k.lower().removeprefix("x-amz-meta-"): v
            for k, v in (stat.metadata or {}).items()
            if k.lower().startswith("x-amz-meta-")
        }
        return ObjectHead(size=stat.size or 0, etag=(stat.etag or "").strip('"').lower(), metadata=meta)

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Multipart uploads in progress under ``prefix`` (paginated by key marker: minio 7.2 never sets
        ``next_upload_id_marker``)."""
        found: list[PendingUpload] = []
        key_marker: str | None = None
        try:
            while True:
                result = self._client._list_multipart_uploads(self.bucket, prefix=prefix, key_marker=key_marker)
                found += [PendingUpload(u.object_name or "", u.upload_id or "") for u in result.uploads]
                if not result.is_truncated or not result.next_key_marker or result.next_key_marker == key_marker:
                    return found
                key_marker = result.next_key_marker
        except Exception as exc:
            raise classify(exc) from exc

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()
        except Exception as exc:
            raise classify(exc) from exc
