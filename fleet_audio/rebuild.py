"""Object bytes -> the original file, bit for bit, as a stream (no I/O of its own: read in, write out).

FLAC objects (they start with ``fLaC``): the RIFF pieces from the ``riff`` APPLICATION blocks are written in
order, the decoded samples go where the data chunk's 8-byte header piece says, a zero pad byte follows an
odd-sized data chunk, and the size and sha256 of everything written must equal the ``edgf`` block.
Raw objects are copied, zstd objects (``packed.py``) decompressed; both are checked against the size and sha256
from the S3 user metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fleet_audio import flacmeta, packed, pcm
from fleet_audio.decoder import FlacDecoder, Frame
from fleet_audio.errors import NotOurObject, RestoreError

COPY_BLOCK = 256 * 1024


@dataclass(frozen=True)
class Rebuilt:
    kind: str  # "flac", "raw" or "zstd"
    size: int
    sha256: str


@dataclass(frozen=True)
class Expected:
    size: int
    sha256: str


class StreamReader:
    """``read(n)`` over an iterator of byte blocks: exactly n bytes, fewer only at the end of the stream."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks: Iterator[bytes] = iter(blocks)
        self._buffer = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            if self._pos >= len(self._buffer):
                self._buffer, self._pos = next(self._blocks, b""), 0
                if not self._buffer:
                    break
            piece = self._buffer[self._pos : self._pos + n]
            self._pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        self._buffer, self._pos = data + self._buffer[self._pos :], 0


class _Sink:
    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self.hasher = hashlib.sha256()
        self.size = 0

    def __call__(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)
        self._write(data)


def _check(kind: str, sink: _Sink, expected: Expected | None) -> Rebuilt:
    result = Rebuilt(kind, sink.size, sink.hasher.hexdigest())
    if expected is not None and (result.size, result.sha256) != (expected.size, expected.sha256):
        raise RestoreError(
            f"rebuilt {result.size} bytes sha256 {result.sha256}, the original had {expected.size} bytes "
            f"sha256 {expected.sha256}"
        )
    return result


def _split_pieces(foreign: list[bytes]) -> tuple[list[bytes], int, list[bytes]]:
    """(pieces up to and including the data header, data size, pieces after)."""
    for i, piece in enumerate(foreign):
        if len(piece) == 8 and piece[:4] == b"data":
            return foreign[: i + 1], int.from_bytes(piece[4:], "little"), foreign[i + 1 :]
    raise NotOurObject("FLAC object has no RIFF data chunk piece: not written by edgefleet")


def _rebuild_flac(reader: StreamReader, sink: _Sink) -> Rebuilt:
    header = flacmeta.read_header(reader.read)
    if header.edgf is None:
        raise NotOurObject("FLAC object has no edgf block (original size and sha256): not written by edgefleet")
    before, data_size, after = _split_pieces(header.foreign)
    info = header.streaminfo
    if info.bits_per_sample not in (8, 16, 24):
        raise RestoreError(f"{info.bits_per_sample}-bit FLAC cannot come from an edgefleet WAV")
    width = info.bits_per_sample // 8
    for piece in before:
        sink(piece)
    written = 0

    def on_frame(frame: Frame) -> None:
        nonlocal written
        data = pcm.to_bytes(frame, width)
        written += len(data)
        if written > data_size:
            raise RestoreError(f"FLAC holds more audio than the data chunk's {data_size} bytes")
        sink(data)

    reader.unread(header.raw)  # libFLAC parses the header again itself
    FlacDecoder(reader.read, on_frame).run()
    if written != data_size:
        raise RestoreError(f"FLAC holds {written} bytes of audio, the data chunk says {data_size}")
    if data_size & 1:
        sink(b"\0")
    for piece in after:
        sink(piece)
    return _check("flac", sink, Expected(header.edgf.original_size, header.edgf.sha256))


def rebuild(
    blocks: Iterable[bytes],
    write: Callable[[bytes], object],
    *,
    raw: bool | None = None,
    raw_expected: Expected | None = None,
) -> Rebuilt:
    """Write the original file's bytes for the object in ``blocks``. ``raw``: from the object's metadata (None:
    decide by the ``fLaC`` magic). ``raw_expected``: size + sha256 a raw object must have (from its S3 metadata);
    FLAC objects carry their own. Raises RestoreError on any mismatch."""
    reader = StreamReader(blocks)
    sink = _Sink(write)
    if raw is None:
        magic = reader.read(4)
        reader.unread(magic)
        raw = magic != flacmeta.MAGIC
    if not raw:
        return _rebuild_flac(reader, sink)
    while data := reader.read(COPY_BLOCK):
        sink(data)
    return _check("raw", sink, raw_expected)


def rebuild_zstd(blocks: Iterable[bytes], write: Callable[[bytes], object], expected: Expected) -> Rebuilt:
    """Write the original file's bytes for the zstd object in ``blocks``; they must have ``expected`` size and
    sha256 (from the object's metadata). Raises RestoreError on a bad frame or any mismatch."""
    sink = _Sink(write)
    for data in packed.decompress(StreamReader(blocks).read):
        if sink.size + len(data) > expected.size:
            raise RestoreError(f"the zstd object holds more than the original's {expected.size} bytes")
        sink(data)
    return _check("zstd", sink, expected)
