"""Restore and verify stored objects against S3 (adapter around rebuild.py).

``restore_object`` streams the object (``get_object``, in blocks) into a temporary file next to the target and
moves it into place only once size and sha256 are verified; it never replaces an existing file unless told to.
``verify_object`` rebuilds the original in memory-bounded blocks, writes nothing, and compares it with a local
file. Both refuse an object edgefleet did not write (``NotOurObject``) unless asked to take it ``as_stored``.

Errors: ``RestoreError`` (the object does not give back a consistent original; ``NotOurObject`` is one) and
``CannotRestore`` (nothing was checked: invalid key, no such object, S3 unreachable or refusing, OUT exists,
ORIGINAL unreadable). Their messages are complete sentences, safe to print, and never name a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from fleet_audio import flacmeta
from fleet_audio.errors import NotOurObject, RestoreError
from fleet_audio.objectkey import MAX_KEY_BYTES
from fleet_audio.rebuild import Expected, Rebuilt, rebuild, rebuild_zstd
from fleet_audio.source import FLAC_FORMAT, META_FORMAT, META_SHA256, META_SIZE, RAW_FORMAT, ZSTD_FORMAT
from fleet_base.filenames import safe_text

if TYPE_CHECKING:
    from minio import Minio

READ_BLOCK = 256 * 1024
_META_PREFIX = "x-amz-meta-"
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}
STORED = "stored"  # Rebuilt.kind of an object taken as it is stored (``as_stored``)


class CannotRestore(Exception):
    """Restore or verify could not run; the message says why (nothing was written or compared)."""


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """S3 user metadata from response headers, keys lower-case without ``x-amz-meta-``."""
    return {k.lower()[len(_META_PREFIX) :]: v for k, v in headers.items() if k.lower().startswith(_META_PREFIX)}


# -- keys ---------------------------------------------------------------------------------------------------------
def key_problem(key: str) -> str:
    """Why ``key`` cannot name one of our objects ("" if it can). Keys edgefleet writes always pass."""
    if not key:
        return "it is empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_KEY_BYTES:
        return f"it is {size} bytes long (S3 allows {MAX_KEY_BYTES})"
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        return "it holds control characters"
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        return "it has an empty, '.' or '..' path segment (or starts or ends with '/')"
    return ""


def check_key(key: str) -> None:
    problem = key_problem(key)
    if problem:
        raise CannotRestore(f"invalid key {safe_text(repr(key))}: {problem}")


def file_name_for(key: str, as_stored: bool = False) -> str:
    """The local file name restoring ``key`` into a folder gives: ``dawn.flac`` → ``dawn.wav``, ``x.f32.wav.zst``
    → ``x.f32.wav``."""
    name = key.rsplit("/", 1)[-1]
    if not as_stored:
        for flac, wav in ((".flac", ".wav"), (".FLAC", ".WAV"), (".zst", "")):
            if name.endswith(flac) and len(name) > len(flac):
                return name[: -len(flac)] + wav
    return name


# -- S3 -----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _s3_errors(client: Minio, bucket: str, key: str) -> Iterator[None]:
    """S3 and network failures as ``CannotRestore`` with a sentence instead of a client dump."""
    where = f"{safe_text(key)} in bucket {bucket}"
    try:
        yield
    except S3Error as exc:
        if exc.code in _NOT_FOUND or exc.code == "NoSuchBucket":
            if exc.code == "NoSuchBucket" or not _bucket_exists(client, bucket):
                raise CannotRestore(f"no such bucket: {bucket}") from None
            raise CannotRestore(f"no such object: {where}") from None
        if exc.code in _DENIED:
            raise CannotRestore(f"S3 refused access to {where} ({exc.code}): check the S3 credentials") from None
        raise CannotRestore(f"S3 error for {where}: {exc.code}: {exc.message}") from None
    except (MinioException, HTTPError) as exc:
        raise CannotRestore(f"cannot reach S3 for {where}: {exc}") from None


def _bucket_exists(client: Minio, bucket: str) -> bool:
    try:
        return bool(client.bucket_exists(bucket))
    except (MinioException, HTTPError):
        return True  # cannot tell: report the object as missing


def object_blocks(client: Minio, bucket: str, key: str, block: int = READ_BLOCK) -> Iterator[bytes]:
    response = client.get_object(bucket, key)
    try:
        yield from response.stream(block)
    finally:
        response.close()
        response.release_conn()


def _peek(blocks: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``n`` bytes (fewer if the object is shorter) and the whole stream again."""
    head = b""
    for block in blocks:
        head += block
        if len(head) >= n:
            break
    return head[:n], itertools.chain([head], blocks)


def _raw_expected(meta: Mapping[str, str]) -> Expected:
    try:
        return Expected(int(meta[META_SIZE]), meta[META_SHA256])
    except (KeyError, ValueError) as exc:
        raise RestoreError(f"raw object without valid size/sha256 metadata: {exc}") from exc


def _rebuild(client: Minio, bucket: str, key: str, write: Callable[[bytes], object], as_stored: bool) -> Rebuilt:
    stat = client.stat_object(bucket, key)
    meta = user_metadata(stat.metadata or {})
    blocks = object_blocks(client, bucket, key)
    if as_stored:
        return replace(rebuild(blocks, write, raw=True), kind=STORED)
    fmt = meta.get(META_FORMAT)
    if fmt == RAW_FORMAT:
        return rebuild(blocks, write, raw=True, raw_expected=_raw_expected(meta))
    if fmt == ZSTD_FORMAT:
        return rebuild_zstd(blocks, write, _raw_expected(meta))
    if fmt not in (None, FLAC_FORMAT):
        raise NotOurObject(f"its {META_FORMAT} {safe_text(repr(fmt))} is not one this edgefleet knows")
    # our FLAC (the edgf block inside proves it: copies made without user metadata restore too)
    magic, blocks = _peek(blocks, len(flacmeta.MAGIC))
    if magic != flacmeta.MAGIC:
        if fmt is None:
            raise NotOurObject(f"it has no {META_FORMAT} metadata and is not a FLAC file")
        raise RestoreError(f"its metadata says {fmt} but it is not a FLAC file")
    return rebuild(blocks, write, raw=False)


def rebuild_object(
    client: Minio, bucket: str, key: str, write: Callable[[bytes], object], *, as_stored: bool = False
) -> Rebuilt:
    """Feed the original file's bytes to ``write`` (``as_stored``: the object's bytes, unchecked)."""
    check_key(key)
    with _s3_errors(client, bucket, key):
        try:
            return _rebuild(client, bucket, key, write, as_stored)
        except NotOurObject as exc:
            hint = "" if as_stored else "; --raw takes its bytes as they are stored"
            raise NotOurObject(f"{safe_text(key)} is not an edgefleet object: {exc}{hint}") from None


# -- restore ------------------------------------------------------------------------------------------------------
def restore_target(out: Path, key: str, as_stored: bool = False) -> Path:
    """``out``, or ``out/<name from the key>`` when ``out`` is a folder."""
    return out / file_name_for(key, as_stored) if out.is_dir() else out


def _refuse_existing(target: Path) -> CannotRestore:
    return CannotRestore(f"{safe_text(str(target))} exists: not replacing it (--force replaces it)")


def _temporary(folder: Path) -> tuple[int, str]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgefleet-restore-", suffix=".part", dir=folder)
    except OSError as exc:
        raise CannotRestore(f"cannot write into {safe_text(str(folder))}: {exc.strerror or exc}") from None
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)  # like a plain open(): mkstemp makes it 0600
    return fd, tmp


def _move_into_place(tmp: str, target: Path, force: bool) -> None:
    """Rename ``tmp`` to ``target``; without ``force`` never over a file, even one that appeared meanwhile
    (a hard link fails if the name exists; file systems without hard links get a check, then a rename)."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _refuse_existing(target) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(target):
            raise _refuse_existing(target) from None
        os.rename(tmp, target)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def restore_object(
    client: Minio, bucket: str, key: str, out: Path, *, force: bool = False, as_stored: bool = False
) -> Rebuilt:
    """Write the original file to ``out`` (a file path), only when verified. Without ``force`` an existing
    ``out`` is never replaced. ``as_stored``: the object's bytes as they are (no rebuild, no check)."""
    out = out.absolute()
    check_key(key)
    if out.is_dir():
        raise CannotRestore(f"{safe_text(str(out))} is a folder")
    if not force and os.path.lexists(out):
        raise _refuse_existing(out)
    fd, tmp = _temporary(out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            result = rebuild_object(client, bucket, key, f.write, as_stored=as_stored)
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, out, force)
        _fsync_folder(out.parent)
    except OSError as exc:  # write, fsync, rename: say what failed without the temporary name
        raise CannotRestore(f"cannot write {safe_text(str(out))}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return result


# -- verify -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    matches: bool
    original: Expected
    rebuilt: Rebuilt

    def describe(self) -> str:
        what = "the object as stored" if self.rebuilt.kind == STORED else f"{self.rebuilt.kind} object"
        if self.matches:
            return f"OK: {self.rebuilt.size} bytes, sha256 {self.rebuilt.sha256} ({what})"
        return (
            f"MISMATCH: {what} gives {self.rebuilt.size} bytes sha256 {self.rebuilt.sha256}, "
            f"the original has {self.original.size} bytes sha256 {self.original.sha256}"
        )


def file_digest(path: Path, block: int = READ_BLOCK) -> Expected:
    hasher = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            while data := f.read(block):
                hasher.update(data)
                size += len(data)
    except OSError as exc:
        raise CannotRestore(f"cannot read {safe_text(str(path))}: {exc.strerror or exc}") from None
    return Expected(size, hasher.hexdigest())


def verify_object(client: Minio, bucket: str, key: str, original: Path, *, as_stored: bool = False) -> Verdict:
    """Does the object give back exactly ``original``? Raises RestoreError if the object is itself inconsistent,
    NotOurObject if edgefleet did not write it (unless ``as_stored``: its bytes are compared as they are)."""
    check_key(key)
    want = file_digest(original)
    got = rebuild_object(client, bucket, key, lambda _data: None, as_stored=as_stored)
    return Verdict((got.size, got.sha256) == (want.size, want.sha256), want, got)
