"""What a stored object says about its recording, read from S3 with ranged GETs (the audio is never read).

- FLAC object (``docs/audio-format.md``): the metadata blocks only: STREAMINFO gives rate, channels, bits and
  duration, the ``riff`` blocks the WAV's chunks (recorder metadata), ``edgf`` the original's size and sha256.
- raw WAV: the RIFF chunk table, walked by reading each chunk header; ``fmt`` gives the audio facts, the
  metadata chunks are read whole (each at most ``recmeta.MAX_CHUNK``).
- raw non-WAV: no audio facts.

The S3 user metadata (``stat_object``) tells the format, the original's size and sha256 for raw objects, and
the file's modification time (``edgefleet-mtime``, agents of this release on). Every failure is a
``CatalogError`` whose ``kind`` says what it means (``docs/recordings.md``): ``unreachable`` (S3 did not answer)
and ``denied`` (the identity may not read) are nothing wrong with the object (try again later); ``missing``,
``not_ours``, ``mismatch`` and ``damaged`` are.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from fleet_audio import flacmeta, packed, recmeta, wav
from fleet_audio.errors import RestoreError
from fleet_audio.restore import user_metadata
from fleet_audio.source import FLAC_FORMAT, META_FORMAT, META_MTIME, META_SHA256, META_SIZE, RAW_FORMAT, ZSTD_FORMAT

if TYPE_CHECKING:
    from minio import Minio

#: the first ranged GET: the whole header of a usual object (a few KiB of chunks) in one request
FIRST_READ = 64 * 1024
#: a FLAC header of ours is at most this long (the non-audio chunks are bounded by the agent)
MAX_HEADER = wav.MAX_FOREIGN_TOTAL + 64 * 1024
#: chunk headers read from a raw WAV
MAX_RAW_CHUNKS = 64
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound", "NoSuchBucket"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}


class CatalogError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def transient(self) -> bool:
        """S3 did not answer, or refused the catalog's identity (a setting, the same for every object): the object
        is not at fault, and the attempt does not count."""
        return self.kind in ("unreachable", "denied")


@dataclass(frozen=True)
class Expected:
    """What the agent's ``upload_completed`` event said about the object."""

    key: str
    codec: str
    original_bytes: int
    stored_bytes: int
    sha256: str


@dataclass
class ObjectFacts:
    sample_rate: int | None = None
    channels: int | None = None
    bits_per_sample: int | None = None
    duration_s: float | None = None
    mtime: datetime | None = None
    chunks: list[recmeta.Chunk] = field(default_factory=list)


class Ranged(Protocol):
    """What the WAV readers (``_wav_facts``, ``_raw_wav_chunks``) need: a size and reads by byte range. An object
    in S3 (``RangedObject``) or the decompressed start of a zstd object's original (``_Prefix``)."""

    @property
    def size(self) -> int: ...

    def range(self, offset: int, length: int) -> bytes: ...


class RangedObject:
    """Reads of one object by byte range, through a buffer that starts with its first ``FIRST_READ`` bytes."""

    def __init__(self, client: Minio, bucket: str, key: str, size: int) -> None:
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self._start, self._buf = 0, b""
        self.pos = 0

    def range(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if self._start <= offset and offset + length <= self._start + len(self._buf):
            return self._buf[offset - self._start : offset - self._start + length]
        if length == 0:
            return b""
        want = max(length, FIRST_READ)
        with s3_errors(self.key):
            response = self.client.get_object(self.bucket, self.key, offset=offset, length=want)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
        self._start, self._buf = offset, data
        return data[:length]

    def read(self, n: int) -> bytes:
        """Sequential reads for ``flacmeta.read_header``, refusing to go past ``MAX_HEADER``."""
        if self.pos + n > MAX_HEADER:
            raise CatalogError("not_ours", f"FLAC header longer than {MAX_HEADER} bytes")
        data = self.range(self.pos, n)
        self.pos += len(data)
        return data


class s3_errors:
    """S3 and network failures as ``CatalogError`` with their meaning."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> Literal[False]:
        if isinstance(exc, S3Error):
            if exc.code in _NOT_FOUND:
                raise CatalogError("missing", f"no such object: {self.key}") from None
            if exc.code in _DENIED:
                raise CatalogError("denied", f"S3 refused access to {self.key} ({exc.code})") from None
            if (exc.response is not None and exc.response.status >= 500) or exc.code in ("SlowDown", "InternalError"):
                raise CatalogError("unreachable", f"S3 error {exc.code} for {self.key}") from None
            raise CatalogError("damaged", f"S3 error {exc.code} for {self.key}: {exc.message}") from None
        if isinstance(exc, (MinioException, HTTPError, OSError)):
            raise CatalogError("unreachable", f"cannot reach S3: {exc}") from None
        return False


def _mtime(meta: Mapping[str, str]) -> datetime | None:
    return recmeta.parse_timestamp(meta.get(META_MTIME, ""))


def _check(what: str, found: object, expected: object) -> None:
    if found != expected:
        raise CatalogError("mismatch", f"{what}: the object says {found}, the upload event {expected}")


def _flac_facts(obj: RangedObject, expected: Expected) -> ObjectFacts:
    try:
        header = flacmeta.read_header(obj.read)
    except RestoreError as exc:
        raise CatalogError("not_ours" if obj.pos <= 4 else "damaged", f"FLAC header: {exc}") from None
    if header.edgf is None:
        raise CatalogError("not_ours", "a FLAC object without an edgefleet (edgf) block")
    _check("original size", header.edgf.original_size, expected.original_bytes)
    _check("original sha256", header.edgf.sha256, expected.sha256)
    info = header.streaminfo
    if not info.sample_rate:
        raise CatalogError("damaged", "STREAMINFO with sample rate 0")
    return ObjectFacts(
        info.sample_rate,
        info.channels,
        info.bits_per_sample,
        info.total_samples / info.sample_rate,
        chunks=recmeta.chunks_from_pieces(header.foreign),
    )


def _raw_wav_chunks(obj: Ranged) -> tuple[list[recmeta.Chunk], int]:
    """The chunks of a raw WAV (``data`` without its body) and the size its ``data`` chunk declares."""
    chunks: list[recmeta.Chunk] = []
    pos, data_size = 12, 0
    while pos + 8 <= obj.size and len(chunks) < MAX_RAW_CHUNKS:
        head = obj.range(pos, 8)
        cid, size = head[:4], struct.unpack("<I", head[4:8])[0]
        wanted = cid == b"fmt " or (cid in recmeta.PARSERS and size <= recmeta.MAX_CHUNK)
        chunks.append((cid, obj.range(pos + 8, min(size, 1024 * 1024)) if wanted else b""))
        if cid == b"data":
            data_size = size
        pos += 8 + size + (size & 1)
    return chunks, data_size


def _check_original(meta: Mapping[str, str], expected: Expected) -> None:
    if meta.get(META_SIZE) is None or not meta.get(META_SHA256):
        raise CatalogError("not_ours", "a raw or zstd object without edgefleet size and sha256 metadata")
    _check("original size", meta.get(META_SIZE), str(expected.original_bytes))
    _check("original sha256", meta.get(META_SHA256), expected.sha256)


class _Prefix:
    """The first ``ZSTD_PREFIX`` bytes of a zstd object's original, ``Ranged`` like a ``RangedObject`` (its chunk table
    up to the ``data`` chunk's header; chunks after the audio are not seen)."""

    def __init__(self, obj: RangedObject) -> None:
        pos = 0

        def read(n: int) -> bytes:
            nonlocal pos
            data = obj.range(pos, n)
            pos += len(data)
            return data

        out = bytearray()
        try:
            for block in packed.decompress(read):
                out += block
                if len(out) >= ZSTD_PREFIX:
                    break
        except RestoreError as exc:
            raise CatalogError("damaged", str(exc)) from None
        self.data = bytes(out[:ZSTD_PREFIX])
        self.size = len(self.data)

    def range(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


#: how much of a zstd object's original the catalog decompresses to find its chunks
ZSTD_PREFIX = 1 << 20


def _zstd_facts(obj: RangedObject, meta: Mapping[str, str], expected: Expected) -> ObjectFacts:
    _check_original(meta, expected)
    return _wav_facts(_Prefix(obj))


def _raw_facts(obj: RangedObject, meta: Mapping[str, str], expected: Expected) -> ObjectFacts:
    _check_original(meta, expected)
    _check("stored size", obj.size, expected.original_bytes)
    return _wav_facts(obj)


def _wav_facts(obj: Ranged) -> ObjectFacts:
    head = obj.range(0, 12)
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return ObjectFacts()
    chunks, data_size = _raw_wav_chunks(obj)
    facts = ObjectFacts(chunks=[c for c in chunks if c[0] != b"fmt "])
    fmt = next((wav.parse_fmt(body) for cid, body in chunks if cid == b"fmt "), None)
    if isinstance(fmt, wav.PcmFormat) and fmt.channels and fmt.sample_rate:
        facts.sample_rate, facts.channels, facts.bits_per_sample = fmt.sample_rate, fmt.channels, fmt.bits_per_sample
        if fmt.block_align:
            facts.duration_s = data_size // fmt.block_align / fmt.sample_rate
    return facts


def read_facts(client: Minio, bucket: str, expected: Expected) -> ObjectFacts:
    """Everything the catalog learns from one object; raises ``CatalogError``."""
    with s3_errors(expected.key):
        stat = client.stat_object(bucket, expected.key)
    meta = user_metadata(stat.metadata or {})
    size = int(stat.size or 0)
    if expected.stored_bytes:
        _check("stored size", size, expected.stored_bytes)
    obj = RangedObject(client, bucket, expected.key, size)
    fmt = meta.get(META_FORMAT, "")
    if fmt == ZSTD_FORMAT or expected.codec == "zstd":
        facts = _zstd_facts(obj, meta, expected)
    elif expected.codec == "raw" or fmt == RAW_FORMAT:
        facts = _raw_facts(obj, meta, expected)
    elif fmt in ("", FLAC_FORMAT):
        facts = _flac_facts(obj, expected)
    else:
        raise CatalogError("not_ours", f"unknown edgefleet-format {fmt[:40]!r}")
    facts.mtime = _mtime(meta)
    return facts
