"""One recording as the bytes of the object to store, produced as a deterministic stream
(docs/upload-engine.md, "Public API").

``open_source`` reads only the chunk table; ``body()`` then streams the data chunk in blocks through libFLAC
(or copies the file unchanged for raw objects). Memory stays at about one read block plus the non-audio chunks
(bounded by wav.MAX_FOREIGN_TOTAL); nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, cast
from urllib.parse import quote

from fleet_audio import flacmeta, packed, pcm, recmeta, wav
from fleet_audio.ahead import Ahead
from fleet_audio.encoder import EncoderError, FrameEncoder
from fleet_audio.errors import RecordingNotReady, RecordingRejected, SourceChanged
from fleet_audio.objectkey import object_key_for

__all__ = [
    "ByteReader",
    "FileFingerprint",
    "ObjectSource",
    "RecordingNotReady",
    "RecordingRejected",
    "SourceChanged",
    "check_finished",
    "object_key",
    "open_reader",
    "open_source",
]

KiB = 1024
DEFAULT_READ_BLOCK = 256 * KiB
RAW_LEVEL = -1
META_FORMAT = "edgefleet-format"
META_SIZE = "edgefleet-original-size"
META_SHA256 = "edgefleet-original-sha256"
META_RAW_REASON = "edgefleet-raw-reason"
META_NAME = "edgefleet-original-name"
#: the file's modification time (ISO 8601, UTC): the catalog's last resort for when it was recorded
META_MTIME = "edgefleet-mtime"
FLAC_FORMAT = f"flac-v{flacmeta.EDGF_VERSION}"
RAW_FORMAT = "raw"
ZSTD_FORMAT = packed.ZSTD_FORMAT
Kind = Literal["flac", "raw", "zstd"]
# libFLAC frames hold at least 1152 samples at levels 0-2 (4096 above): per frame at most a 16-byte frame
# header, 2 bytes CRC and a few bytes per subframe header; verbatim subframes are never larger than the PCM.
_FRAME_OVERHEAD = 32
_MIN_BLOCKSIZE = 1152


@dataclass(frozen=True)
class FileFingerprint:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileFingerprint:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


class ObjectSource(Protocol):
    kind: Kind
    raw_reason: str
    fingerprint: FileFingerprint
    original_size: int
    header_size: int
    size_bound: int
    content_type: str
    #: when the recording was made, from its own metadata or name (``recmeta``); None: only the mtime says
    recorded_at: datetime | None

    @property
    def metadata(self) -> Mapping[str, str]: ...
    def body(self) -> Iterator[bytes]: ...
    def header(self) -> bytes: ...
    def original_sha256(self) -> str: ...
    def close(self) -> None: ...


class ByteReader(Protocol):
    """Where a source's bytes come from: a local file (``_FileReader``) or a stored object (the transcoder's)."""

    label: str  # for messages: the path or the key
    fingerprint: FileFingerprint  # size is the byte count; mtime and inode are 0 when there are none

    def name_metadata(self) -> str: ...  # the original file name, percent-encoded (``edgefleet-original-name``)
    def check_unchanged(self) -> None: ...  # raises SourceChanged
    def pread(self, size: int, offset: int) -> bytes: ...  # exactly ``size`` bytes or SourceChanged
    def blocks(self, start: int, length: int, block: int, hasher: hashlib._Hash) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class _FileReader:
    """Positional reads of one open file, with the change checks every source needs."""

    def __init__(self, path: Path, f: BinaryIO, fingerprint: FileFingerprint) -> None:
        self.path = path
        self.label = str(path)
        self._f = f
        self.fingerprint = fingerprint

    def name_metadata(self) -> str:
        return original_name_metadata(self.path)

    def check_unchanged(self) -> None:
        try:
            now_fd = FileFingerprint.of(os.fstat(self._f.fileno()))
            now_path = FileFingerprint.of(os.stat(self.path))
        except OSError as exc:
            raise SourceChanged(f"{self.path}: vanished while reading ({exc})") from exc
        if now_fd != self.fingerprint or now_path != self.fingerprint:
            raise SourceChanged(f"{self.path}: changed while reading ({self.fingerprint} -> {now_path})")

    def pread(self, size: int, offset: int) -> bytes:
        try:
            buf = os.pread(self._f.fileno(), size, offset)
        except OSError as exc:
            raise SourceChanged(f"{self.path}: read failed at {offset}: {exc}") from exc
        if len(buf) != size:
            raise SourceChanged(f"{self.path}: short read at {offset} (file shrank?)")
        return buf

    def blocks(self, start: int, length: int, block: int, hasher: hashlib._Hash) -> Iterator[bytes]:
        """The bytes [start, start+length) in blocks, hashed on the way, checking for changes per block."""
        pos, end = start, start + length
        while pos < end:
            buf = self.pread(min(block, end - pos), pos)
            hasher.update(buf)
            pos += len(buf)
            self.check_unchanged()
            yield buf

    def close(self) -> None:
        self._f.close()


class FlacSource:
    kind: Kind = "flac"
    raw_reason = ""
    content_type = "audio/flac"
    recorded_at: datetime | None = None

    def __init__(self, reader: ByteReader, layout: wav.WavLayout, level: int, read_block: int) -> None:
        assert layout.fmt is not None
        assert layout.data is not None
        self._reader = reader
        self._fmt = layout.fmt
        self._data = layout.data
        self._level = level
        self._read_block = max(self._fmt.block_align, read_block - read_block % self._fmt.block_align)
        pieces = [reader.pread(12, 0)]
        for chunk in layout.chunks:
            pieces.append(reader.pread(8 if chunk is self._data else chunk.end - chunk.offset, chunk.offset))
        split = layout.chunks.index(self._data) + 2  # RIFF header + chunks before data + data header
        self._before, self._after = pieces[:split], pieces[split:]
        self.fingerprint = reader.fingerprint
        self.original_size = layout.file_size
        self.header_size = flacmeta.header_size(pieces)
        frames = -(-layout.frames // _MIN_BLOCKSIZE) + 1
        overhead = frames * (_FRAME_OVERHEAD + 4 * self._fmt.channels) + self._data.size // 64
        self.size_bound = self.header_size + self._data.size + overhead
        self.metadata: Mapping[str, str] = {
            META_FORMAT: FLAC_FORMAT,
            META_SIZE: str(self.original_size),
            META_NAME: reader.name_metadata(),
            **mtime_entry(reader.fingerprint),
        }
        self._header: bytes | None = None
        self._sha256: str | None = None
        self.compression_level = level
        # the encode rate of this file (edge_agent.engine.encoderate): WAV bytes fed, wall time converting+encoding
        self.encoded_bytes = 0
        self.encode_seconds = 0.0
        self._ahead: Ahead | None = None  # a head encoded in a thread (``encode_ahead``), stopped by close()

    def encode_ahead(self, limit: int) -> None:
        """Start encoding now, in a thread, up to ``limit`` bytes of the body: the first ``body()`` begins with
        them (``fleet_audio.ahead``)."""
        if self._ahead is None:
            self._ahead = Ahead(self._body(), limit, name=f"encode-ahead-{self._reader.label}")

    def _encode(self, encoder: FrameEncoder, buf: bytes) -> bytes:
        started = time.perf_counter()
        out = encoder.encode(pcm.to_samples(buf, self._fmt.sample_width, self._fmt.channels))
        self.encode_seconds += time.perf_counter() - started
        self.encoded_bytes += len(buf)
        return out

    def body(self) -> Iterator[bytes]:
        if self._ahead is not None:
            if not self._ahead.taken:
                return iter(self._ahead)
            self._ahead.close()  # a new pass: the last one's head thread must not run beside it
        return self._body()

    def _body(self) -> Iterator[bytes]:
        self._reader.check_unchanged()
        fmt, data = self._fmt, self._data
        hasher = hashlib.sha256()
        for piece in self._before:
            hasher.update(piece)
        encoder = FrameEncoder(fmt.sample_rate, fmt.channels, fmt.bits_per_sample, self._level)
        self.encoded_bytes, self.encode_seconds = 0, 0.0
        try:
            for buf in self._reader.blocks(data.body_offset, data.size, self._read_block, hasher):
                out = self._encode(encoder, buf)
                if out:
                    yield out
            out, info = encoder.finish()
        finally:
            encoder.close()
        if out:
            yield out
        if data.size & 1:
            hasher.update(b"\0")
        for piece in self._after:
            hasher.update(piece)
        self._reader.check_unchanged()
        self._sha256 = hasher.hexdigest()
        pieces = self._before + self._after
        self._header = flacmeta.build_header(info, pieces, flacmeta.EdgfInfo(self.original_size, self._sha256))
        assert len(self._header) == self.header_size

    def header(self) -> bytes:
        if self._header is None:
            raise RuntimeError("header() is final only after body() is exhausted")
        return self._header

    def original_sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("original_sha256() is known only after body() is exhausted")
        return self._sha256

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
        self._reader.close()


class RawSource:
    """The file unchanged. Its sha256 goes into the S3 user metadata, so it needs one pre-pass (raw is rare)."""

    kind: Kind = "raw"
    format = RAW_FORMAT
    header_size = 0
    recorded_at: datetime | None = None

    def __init__(self, reader: ByteReader, reason: str, is_wav: bool, read_block: int) -> None:
        self._reader = reader
        self._read_block = read_block
        self.raw_reason = reason
        self.fingerprint = reader.fingerprint
        self.original_size = self.size_bound = reader.fingerprint.size
        self.content_type = "audio/wav" if is_wav else "application/octet-stream"
        self._sha256: str | None = None

    def _stream(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        yield from self._reader.blocks(0, self.original_size, self._read_block, hasher)
        digest = hasher.hexdigest()
        if self._sha256 is not None and digest != self._sha256:
            raise SourceChanged(f"{self._reader.label}: content changed between reads")
        self._sha256 = digest

    @property
    def metadata(self) -> Mapping[str, str]:
        return {
            META_FORMAT: self.format,
            META_SIZE: str(self.original_size),
            META_SHA256: self.original_sha256(),
            META_RAW_REASON: self.raw_reason.encode("ascii", "replace").decode(),
            META_NAME: self._reader.name_metadata(),
            **mtime_entry(self.fingerprint),
        }

    def body(self) -> Iterator[bytes]:
        self._reader.check_unchanged()
        return self._stream()

    def header(self) -> bytes:
        return b""

    def original_sha256(self) -> str:
        if self._sha256 is None:
            for _ in self._stream():
                pass
        assert self._sha256 is not None
        return self._sha256

    def close(self) -> None:
        self._reader.close()


class ZstdSource(RawSource):
    """The file through zstd (``packed.py``): for what FLAC cannot hold, when a sample showed it saves enough.
    Like a raw object, the original's size and sha256 are in the S3 user metadata (one pre-pass)."""

    kind: Kind = "zstd"
    format = ZSTD_FORMAT
    content_type = "application/zstd"

    def __init__(self, reader: ByteReader, reason: str, read_block: int) -> None:
        super().__init__(reader, reason, False, read_block)
        self.content_type = ZstdSource.content_type
        self.size_bound = packed.size_bound(self.original_size)

    def body(self) -> Iterator[bytes]:
        self._reader.check_unchanged()
        return packed.compress(self._stream(), self.original_size)


def _open(path: Path) -> tuple[BinaryIO, FileFingerprint]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - owned by the source, closed by close()
    except OSError as exc:
        raise RecordingRejected(f"{path}: unreadable: {exc}") from exc
    try:
        return f, FileFingerprint.of(os.fstat(f.fileno()))
    except OSError as exc:
        f.close()
        raise RecordingRejected(f"{path}: unreadable: {exc}") from exc


def _inspect(path: Path, f: BinaryIO, size: int, settled: bool) -> wav.WavLayout:
    try:
        return wav.inspect(f, size, settled=settled)
    except OSError as exc:
        raise RecordingRejected(f"{path}: unreadable: {exc}") from exc
    except (RecordingNotReady, RecordingRejected) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def check_finished(path: Path, *, settled: bool = False) -> None:
    """Cheap check (header + stat). ``settled=True``: the caller saw size and mtime stable for its wait time,
    so in-progress signs now mean truncated / never finalized (RecordingRejected). A file that vanished is
    "not ready" (a recorder renaming it, a retention move): the caller's next scan no longer sees it."""
    if not os.path.lexists(path):
        raise RecordingNotReady(f"{path}: vanished")
    f, fingerprint = _open(path)
    with f:
        _inspect(path, f, fingerprint.size, settled)


def _encoder_refusal(layout: wav.WavLayout, level: int) -> str:
    """libFLAC's own verdict on these settings, asked once up front so body() cannot fail on them later."""
    assert layout.fmt is not None
    try:
        FrameEncoder(layout.fmt.sample_rate, layout.fmt.channels, layout.fmt.bits_per_sample, level).close()
    except EncoderError as exc:
        return f"libFLAC refuses this format ({exc})"
    return ""


def _recorded_at(reader: _FileReader, layout: wav.WavLayout) -> datetime | None:
    """The recording's own time (metadata chunks, then the name; ``recmeta``), None when only the mtime
    could say. Reads the few metadata chunks only (each at most ``recmeta.MAX_CHUNK``)."""
    wanted = [c for c in layout.chunks if c.cid in recmeta.PARSERS and c.size <= recmeta.MAX_CHUNK]
    try:
        chunks = [(c.cid, reader.pread(c.size, c.body_offset)) for c in wanted[: recmeta.MAX_CHUNKS]]
    except SourceChanged:
        chunks = []
    found = recmeta.extract(chunks, file_name=os.fsdecode(reader.path.name))
    return found.recorded_at


RAW_REQUESTED = "raw upload requested (compression level -1)"


def _check_level(compression_level: int) -> None:
    if not RAW_LEVEL <= compression_level <= 8:
        raise ValueError(f"compression level must be -1..8, got {compression_level}")


def _packed_or_raw(reader: ByteReader, reason: str, is_wav: bool, read_block: int) -> ObjectSource:
    """zstd when a sample of the file (its first ``packed.SAMPLE_BYTES``) shrinks by at least 5 %, else raw."""
    sample = reader.pread(min(packed.SAMPLE_BYTES, reader.fingerprint.size), 0)
    if packed.saves_enough(sample):
        return ZstdSource(reader, reason, read_block)
    return RawSource(reader, reason, is_wav, read_block)


def _choose(reader: ByteReader, layout: wav.WavLayout, compression_level: int, read_block: int) -> ObjectSource:
    is_wav = layout.fmt is not None
    if compression_level == RAW_LEVEL:  # raw means raw: the controller asked for the unchanged file
        return RawSource(reader, RAW_REQUESTED, is_wav, read_block)
    reason = layout.raw_reason or _encoder_refusal(layout, compression_level)
    if reason:
        return _packed_or_raw(reader, reason, is_wav, read_block)
    return FlacSource(reader, layout, compression_level, read_block)


def open_source(path: Path, compression_level: int, *, read_block: int = DEFAULT_READ_BLOCK) -> ObjectSource:
    """compression_level 0-8 (FLAC; zstd or raw for what FLAC cannot hold) or -1 (raw upload of the unchanged
    file). Treats the file as settled."""
    _check_level(compression_level)
    f, fingerprint = _open(path)
    try:
        layout = _inspect(path, f, fingerprint.size, settled=True)
        reader = _FileReader(path, f, fingerprint)
        source = _choose(reader, layout, compression_level, read_block)
        source.recorded_at = _recorded_at(reader, layout)
        return source
    except BaseException:
        f.close()
        raise


class _ReaderFile:
    """Just enough of a binary file (seek, read) over a ByteReader for ``wav.inspect``."""

    def __init__(self, reader: ByteReader) -> None:
        self._reader = reader
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset
        return offset

    def read(self, size: int) -> bytes:
        size = max(0, min(size, self._reader.fingerprint.size - self._pos))
        data = self._reader.pread(size, self._pos) if size else b""
        self._pos += len(data)
        return data


def open_reader(reader: ByteReader, compression_level: int, *, read_block: int = DEFAULT_READ_BLOCK) -> ObjectSource:
    """``open_source`` for bytes that are not a local file (the transcoder reads a stored raw object). The source
    owns ``reader`` (closes it), also when this raises."""
    _check_level(compression_level)
    try:
        layout = wav.inspect(cast(BinaryIO, _ReaderFile(reader)), reader.fingerprint.size, settled=True)
        return _choose(reader, layout, compression_level, read_block)
    except (RecordingNotReady, RecordingRejected) as exc:
        reader.close()
        raise RecordingRejected(f"{reader.label}: {exc}") from None
    except BaseException:
        reader.close()
        raise


def object_key(prefix: str, agent_id: str, path: Path, source: ObjectSource) -> str:
    """{prefix}/{agent_id}/{YYYY}/{MM}/{DD}/{name}: the date (UTC) is when the recording was made when its
    metadata or its name says (``source.recorded_at``, see ``recmeta``), else the file's mtime; ``name`` is
    ``dawn.flac`` for ``dawn.wav`` (raw objects keep the name), made safe and unique for any other byte string
    (``objectkey.py``). A source without ``recorded_at`` (a test double) uses the mtime."""
    recorded: datetime | None = getattr(source, "recorded_at", None)
    day = recorded or datetime.fromtimestamp(source.fingerprint.mtime_ns / 1e9, tz=UTC)
    directory = "/".join(p for p in (prefix.strip("/"), agent_id, f"{day:%Y}", f"{day:%m}", f"{day:%d}") if p)
    return object_key_for(directory, os.fsencode(path.name), source.kind)


def original_name_metadata(path: Path) -> str:
    """The file name's exact bytes as an ASCII header value (percent-encoded; ``urllib.parse.unquote_to_bytes``
    gives them back)."""
    return quote(os.fsencode(path.name), safe="")


def mtime_entry(fingerprint: FileFingerprint) -> dict[str, str]:
    """``edgefleet-mtime`` for a local file; nothing for a source without one (the transcoder reads an object)."""
    return {META_MTIME: mtime_metadata(fingerprint)} if fingerprint.mtime_ns else {}


def mtime_metadata(fingerprint: FileFingerprint) -> str:
    """The file's mtime as an S3 metadata value: ISO 8601 in UTC (``2026-05-28T06:15:00.000000+00:00``)."""
    try:
        return datetime.fromtimestamp(fingerprint.mtime_ns / 1e9, tz=UTC).isoformat(timespec="microseconds")
    except (OverflowError, ValueError, OSError):
        return ""
