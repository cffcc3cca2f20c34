"""Restore and verify stored objects against S3 (adapter around rebuild.py).

``restore_object`` streams the object (``get_object``, in blocks) into a temporary file next to the target and
renames it only once size and sha256 are verified; ``verify_object`` rebuilds the original in memory-bounded
blocks, writes nothing, and compares it with a local file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from minio.error import MinioException
from urllib3.exceptions import HTTPError

from edge_agent.audio.errors import RestoreError
from edge_agent.audio.rebuild import Expected, Rebuilt, rebuild
from edge_agent.audio.source import META_FORMAT, META_SHA256, META_SIZE, RAW_FORMAT
from edge_agent.s3settings import S3SettingsError

if TYPE_CHECKING:
    from minio import Minio

READ_BLOCK = 256 * 1024
# What restore/verify report as a failure with a message rather than a traceback.
FAILURES: tuple[type[BaseException], ...] = (RestoreError, S3SettingsError, MinioException, HTTPError, OSError)
_META_PREFIX = "x-amz-meta-"


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """S3 user metadata from response headers, keys lower-case without ``x-amz-meta-``."""
    return {k.lower()[len(_META_PREFIX) :]: v for k, v in headers.items() if k.lower().startswith(_META_PREFIX)}


def _raw_expectation(meta: Mapping[str, str]) -> tuple[bool | None, Expected | None]:
    fmt = meta.get(META_FORMAT)
    if fmt != RAW_FORMAT:
        return (False if fmt else None), None
    try:
        return True, Expected(int(meta[META_SIZE]), meta[META_SHA256])
    except (KeyError, ValueError) as exc:
        raise RestoreError(f"raw object without valid size/sha256 metadata: {exc}") from exc


def object_blocks(client: Minio, bucket: str, key: str, block: int = READ_BLOCK) -> Iterator[bytes]:
    response = client.get_object(bucket, key)
    try:
        yield from response.stream(block)
    finally:
        response.close()
        response.release_conn()


def rebuild_object(client: Minio, bucket: str, key: str, write: Callable[[bytes], object]) -> Rebuilt:
    stat = client.stat_object(bucket, key)
    raw, expected = _raw_expectation(user_metadata(stat.metadata or {}))
    return rebuild(object_blocks(client, bucket, key), write, raw=raw, raw_expected=expected)


def restore_object(client: Minio, bucket: str, key: str, out: Path) -> Rebuilt:
    """Write the original file to ``out`` (replaced atomically, only when verified)."""
    out = out.absolute()
    tmp = out.with_name(f".{out.name}.restoring-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            result = rebuild_object(client, bucket, key, f.write)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return result


@dataclass(frozen=True)
class Verdict:
    matches: bool
    original: Expected
    rebuilt: Rebuilt

    def describe(self) -> str:
        if self.matches:
            return f"OK: {self.rebuilt.size} bytes, sha256 {self.rebuilt.sha256} ({self.rebuilt.kind} object)"
        return (
            f"MISMATCH: the object rebuilds {self.rebuilt.size} bytes sha256 {self.rebuilt.sha256}, "
            f"the original has {self.original.size} bytes sha256 {self.original.sha256}"
        )


def file_digest(path: Path, block: int = READ_BLOCK) -> Expected:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while data := f.read(block):
            hasher.update(data)
            size += len(data)
    return Expected(size, hasher.hexdigest())


def verify_object(client: Minio, bucket: str, key: str, original: Path) -> Verdict:
    """Does the object give back exactly ``original``? Raises RestoreError if the object is itself inconsistent."""
    want = file_digest(original)
    got = rebuild_object(client, bucket, key, lambda _data: None)
    return Verdict((got.size, got.sha256) == (want.size, want.sha256), want, got)
