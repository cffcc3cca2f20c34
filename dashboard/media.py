"""Reading recordings from S3 for the dashboard: byte ranges to play, the verified original to download, and
decoded samples for a spectrogram (docs/dashboard.md, "Listening and downloads").

Every call takes a key the route read from a catalog row (``Recording.key``) and checks it again here
(``fleet_audio.restore.check_key``): no key ever comes from the request.

- ``MediaStore.stat`` / ``open_range``: the object's size and one byte range of it, streamed in blocks.
- ``RestoreStream``: the original file rebuilt by ``fleet_audio.restore.rebuild_object`` in a thread of its own,
  handed to the HTTP response through a small bounded queue (no temporary file; a slow client slows the
  rebuild). The last piece (up to ``piece`` bytes) is held back until the size and sha256 of everything have
  been checked: a mismatch ends the stream with ``DownloadFailed`` before that piece, so the client never gets
  a complete file that is wrong.
- ``MediaStore.open_unpacked``: one byte range of the original file a zstd object holds (``UnpackedBody``:
  decompressed from the start, the bytes before the range skipped; its cost is documented there).
- ``MediaStore.spectrogram``: the object decoded as it streams (FLAC through libFLAC, a WAV's PCM data directly,
  decompressed first if the catalog says zstd) into ``dashboard.spectrogram``; raises ``SpectrogramTimeout`` past
  its deadline.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

import numpy as np
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from dashboard.spectrogram import SpectrogramAccumulator, png_bytes, render
from fleet_audio import flacmeta, packed, pcm, wav
from fleet_audio.decoder import FlacDecoder, Frame
from fleet_audio.errors import RestoreError
from fleet_audio.rebuild import StreamReader
from fleet_audio.restore import CannotRestore, check_key, object_blocks, rebuild_object, user_metadata
from fleet_audio.source import META_NAME, META_SIZE
from fleet_base.filenames import safe_text

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger(__name__)

BLOCK = 256 * 1024
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}
_WAVE_FLOAT = 3


class MediaError(Exception):
    """The object cannot be served; ``status`` is the HTTP status to answer (404 missing, 502 S3 failing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DownloadFailed(Exception):
    """The rebuilt original did not check out (or the rebuild failed) after the response had started."""


class SpectrogramTimeout(Exception):
    """Computing a spectrogram took longer than its time limit."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    original_name: bytes | None  # the file name's bytes from the object's metadata
    original_size: int | None  # the original file's size from the object's metadata


@contextlib.contextmanager
def s3_errors(key: str) -> Iterator[None]:
    """S3 failures as ``MediaError`` with a short sentence (no client dump, no credentials)."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _NOT_FOUND:
            raise MediaError(404, f"the object {safe_text(key)} is not in the bucket") from None
        raise MediaError(502, f"S3 refused to read {safe_text(key)}: {exc.code}") from None
    except (MinioException, HTTPError, OSError) as exc:
        raise MediaError(502, f"S3 is not reachable: {type(exc).__name__}") from None
    except CannotRestore as exc:
        raise MediaError(400 if "invalid key" in str(exc) else 502, str(exc)) from None


def _metadata_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class ObjectBody:
    """One streamed GET (a range or the whole object); ``close`` releases the connection."""

    def __init__(self, response: object) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.stream(BLOCK)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._response.close()  # type: ignore[attr-defined]
        self._response.release_conn()  # type: ignore[attr-defined]


class UnpackedBody:
    """One range of the original file a zstd object holds, for a player: the object is read and decompressed from
    its start (a zstd frame cannot be entered in the middle), the ``start`` bytes before the range are dropped,
    the ``length`` after them sent, and the read stops there.

    Cost: a range at offset *o* decompresses *o* + length bytes and reads the compressed bytes up to there from S3
    (measured 0.76 GB of original per CPU second, docs/bench/dashboard.md: a seek near the end of a 500 MB
    recording costs about 0.65 s of one core). Memory: the decompressor's window (at most
    ``2**packed.MAX_WINDOW_LOG`` bytes, 2 MiB at the level the agents write) and one ``packed.OUT_BLOCK`` of
    output; nothing is buffered beyond that. Streams
    per user are limited like any other (``streams_per_user``). A corrupt object or one shorter than its recorded
    size ends the response short of its ``Content-Length`` (``DownloadFailed``): the player sees a cut transfer.
    """

    def __init__(self, body: ObjectBody, start: int, length: int) -> None:
        self._body = body
        self._start = start
        self._length = length

    def __iter__(self) -> Iterator[bytes]:
        skip, left = self._start, self._length
        try:
            for block in packed.decompress(StreamReader(self._body).read):
                if skip >= len(block):
                    skip -= len(block)
                    continue
                piece = block[skip : skip + left]
                skip, left = 0, left - len(piece)
                yield piece
                if left <= 0:
                    return
        except (RestoreError, MinioException, HTTPError, OSError) as exc:
            raise DownloadFailed(f"the zstd object cannot be read: {exc}") from None
        raise DownloadFailed(f"the zstd object ended {left} bytes before the range's end")

    def close(self) -> None:
        self._body.close()


class RestoreStream:
    """The original file's bytes from a rebuild running in its own thread (see the module doc)."""

    _END = object()

    def __init__(self, run: Callable[[Callable[[bytes], None]], object], *, piece: int = BLOCK, depth: int = 4) -> None:
        self._run = run
        self._piece = piece
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._pending = bytearray()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="wav-download", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        while True:
            if self._cancelled.is_set():
                raise DownloadFailed("the client went away")
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.5)
                return

    def _write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) > self._piece:  # always keep the tail back until the check at the end
            self._put(bytes(self._pending[: self._piece]))
            del self._pending[: self._piece]

    def _work(self) -> None:
        try:
            self._run(self._write)
        except BaseException as exc:  # a mismatch, S3 failing, the client gone: the stream ends without the tail
            self.failure = exc
            with contextlib.suppress(DownloadFailed):
                self._put(DownloadFailed(str(exc)))
            return
        with contextlib.suppress(DownloadFailed):
            self._put(bytes(self._pending))
            self._put(self._END)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, DownloadFailed):
                raise item
            assert isinstance(item, bytes)
            if item:
                yield item

    def close(self) -> None:
        """Stop the rebuild (the client went away or the response ended); does not wait for the thread."""
        self._cancelled.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise SpectrogramTimeout("the spectrogram took longer than its time limit")


def _flac_spectrogram(reader: StreamReader, deadline: float, width: int, height: int) -> bytes:
    header = flacmeta.read_header(reader.read)
    info = header.streaminfo
    acc = SpectrogramAccumulator(info.total_samples, info.bits_per_sample, width=width)

    def on_frame(frame: Frame) -> None:
        _check_deadline(deadline)
        acc.feed(frame)

    reader.unread(header.raw)
    FlacDecoder(reader.read, on_frame).run()
    return png_bytes(render(acc, height=height))


def _skip(reader: StreamReader, size: int) -> None:
    while size > 0:
        got = len(reader.read(min(BLOCK, size)))
        if not got:
            return
        size -= got


def _wav_data(reader: StreamReader) -> tuple[wav.PcmFormat, int]:
    """Walk a RIFF/WAVE stream up to its data chunk: (format, data size)."""
    head = reader.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise RestoreError("not a RIFF/WAVE file")
    fmt: wav.PcmFormat | None = None
    while len(chunk := reader.read(8)) == 8:
        cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if cid == b"data":
            if fmt is None:
                raise RestoreError("the WAV data chunk comes before its fmt chunk")
            return fmt, size
        body = reader.read(size + (size & 1)) if cid == b"fmt " and size <= 4096 else None
        if body is not None:
            parsed = wav.parse_fmt(body[:size])
            if isinstance(parsed, str):
                raise RestoreError(f"unsupported WAV format: {parsed}")
            fmt = parsed
            continue
        _skip(reader, size + (size & 1))
    raise RestoreError("the WAV file has no data chunk")


def _wav_spectrogram(reader: StreamReader, deadline: float, width: int, height: int) -> bytes:
    fmt, size = _wav_data(reader)
    floats = fmt.format_tag == _WAVE_FLOAT and fmt.bits_per_sample == 32
    if fmt.sample_width not in (1, 2, 3) and not floats:
        raise RestoreError(f"{fmt.bits_per_sample}-bit WAV samples are not shown")
    align = fmt.block_align
    acc = SpectrogramAccumulator(size // align, fmt.sample_width * 8, width=width)
    step = max(align, BLOCK // align * align)
    left = size - size % align
    while left > 0:
        _check_deadline(deadline)
        data = reader.read(min(step, left))
        data = data[: len(data) - len(data) % align]
        if not data:
            break
        left -= len(data)
        if floats:
            acc.feed(np.frombuffer(data, dtype="<f4").reshape(-1, fmt.channels), is_float=True)
        else:
            acc.feed(pcm.to_samples(data, fmt.sample_width, fmt.channels))
    return png_bytes(render(acc, height=height))


class MediaStore:
    """The dashboard's read access to the bucket."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def stat(self, key: str) -> ObjectInfo:
        with s3_errors(key):
            check_key(key)
            stat = self.client.stat_object(self.bucket, key)
        meta = user_metadata(stat.metadata or {})
        name = meta.get(META_NAME)
        return ObjectInfo(
            size=int(stat.size or 0),
            etag=(stat.etag or "").strip('"'),
            original_name=unquote_to_bytes(name) if name else None,
            original_size=_metadata_int(meta.get(META_SIZE)),
        )

    def open_range(self, key: str, start: int, length: int) -> ObjectBody:
        """Bytes ``start`` .. ``start + length - 1`` of the object (``length`` 0: to the end)."""
        with s3_errors(key):
            check_key(key)
            return ObjectBody(self.client.get_object(self.bucket, key, offset=start, length=length))

    def restore(self, key: str) -> RestoreStream:
        check_key(key)
        return RestoreStream(lambda write: rebuild_object(self.client, self.bucket, key, write))

    def open_unpacked(self, key: str, start: int, length: int) -> UnpackedBody:
        """Bytes ``start`` .. ``start + length - 1`` of the original file a zstd object holds (see
        ``UnpackedBody``: everything before ``start`` is decompressed too)."""
        with s3_errors(key):
            check_key(key)
            response = self.client.get_object(self.bucket, key)
        return UnpackedBody(ObjectBody(response), start, length)

    def spectrogram(self, key: str, *, flac: bool, zstd: bool, deadline: float, width: int, height: int) -> bytes:
        """The PNG of the object's audio (FLAC, else a WAV: raw, or stored as zstd when ``zstd``: decompressed as
        it streams), decoded as it streams. The caller knows the codec (the catalog's): nothing is sniffed."""
        with s3_errors(key):
            check_key(key)
            blocks = object_blocks(self.client, self.bucket, key, BLOCK)
            try:
                reader = StreamReader(blocks)
                if flac:
                    return _flac_spectrogram(reader, deadline, width, height)
                if zstd:
                    reader = StreamReader(packed.decompress(reader.read))
                return _wav_spectrogram(reader, deadline, width, height)
            finally:
                blocks.close()  # type: ignore[attr-defined]
