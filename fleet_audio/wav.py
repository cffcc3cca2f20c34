"""RIFF/WAVE chunk table, read by seeking: the audio data itself is never read here.

Rules this module keeps (docs/design.md, "Objects in the store" and "The upload engine"):
- An empty file is rejected. A file that does not start with ``RIFF....WAVE`` is not a WAV: it is stored raw.
- A recorder writes RIFF sizes 0 or 0xFFFFFFFF (or stale sizes) while recording: that is "not ready".
  Once the caller says the file has settled (size and mtime stable), the same signs mean the recorder
  died or the file was cut short: rejected, with the sizes in the message.
- Every byte of the file must be covered by ``RIFF`` header + chunks, the single ``data`` chunk holding whole
  sample frames of 8/16/24-bit integer PCM (plain or WAVE_FORMAT_EXTENSIBLE/PCM). Anything else (float, other
  formats, RF64, odd layouts FLAC cannot rebuild bit for bit) gets a ``raw_reason`` and is stored unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from fleet_audio.errors import RecordingNotReady, RecordingRejected

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs; the first two bytes are the format tag.
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
UNFINISHED_SIZES = (0, 0xFFFFFFFF)
# A FLAC metadata block holds at most 2**24 - 1 bytes: 4 (application id) + one whole chunk.
MAX_FOREIGN_BLOCK = (1 << 24) - 1 - 4
# Everything that is not audio is held in memory (it goes into the FLAC header): bound it.
MAX_FOREIGN_TOTAL = 16 * 1024 * 1024
MAX_CHUNKS = 4096
FLAC_MAX_RATE = 655350
FLAC_MAX_CHANNELS = 8


@dataclass(frozen=True)
class Chunk:
    cid: bytes  # 4-byte chunk id
    offset: int  # of the 8-byte chunk header in the file
    size: int  # as declared in the header (without pad byte)
    end: int  # where the next chunk starts in this file (pad byte included when present)

    @property
    def body_offset(self) -> int:
        return self.offset + 8


@dataclass(frozen=True)
class PcmFormat:
    format_tag: int  # effective tag: the subformat for WAVE_FORMAT_EXTENSIBLE
    extensible: bool
    channels: int
    sample_rate: int
    block_align: int
    bits_per_sample: int

    @property
    def sample_width(self) -> int:
        return self.block_align // self.channels if self.channels else 0


@dataclass(frozen=True)
class WavLayout:
    file_size: int
    chunks: tuple[Chunk, ...]  # every chunk in file order, fmt and data included
    fmt: PcmFormat | None
    data: Chunk | None
    raw_reason: str  # "" when FLAC can hold this file bit for bit

    @property
    def is_flac(self) -> bool:
        return not self.raw_reason

    @property
    def frames(self) -> int:
        if self.fmt is None or self.data is None or not self.fmt.block_align:
            return 0
        return self.data.size // self.fmt.block_align


def _unfinished(settled: bool, message: str) -> Exception:
    if settled:
        return RecordingRejected(
            f"{message}; the file is no longer changing, so it is truncated or was never finalized"
        )
    return RecordingNotReady(message)


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def parse_fmt(body: bytes) -> PcmFormat | str:
    """The fmt chunk as a PcmFormat, or the reason it cannot be read."""
    if len(body) < 16:
        return f"fmt chunk too short ({len(body)} bytes)"
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    extensible = tag == WAVE_FORMAT_EXTENSIBLE
    if extensible:
        if len(body) < 40:
            return "WAVE_FORMAT_EXTENSIBLE fmt chunk too short"
        guid = body[24:40]
        if guid[2:] != GUID_TAIL:
            return "WAVE_FORMAT_EXTENSIBLE with a non-standard subformat"
        tag = struct.unpack_from("<H", guid)[0]
    return PcmFormat(tag, extensible, channels, rate, block_align, bits)


def flac_problem(fmt: PcmFormat) -> str:
    """Why FLAC cannot hold samples of this format exactly ("" if it can)."""
    if fmt.format_tag == WAVE_FORMAT_IEEE_FLOAT:
        return f"{fmt.bits_per_sample}-bit float PCM"
    if fmt.format_tag != WAVE_FORMAT_PCM:
        return f"audio format 0x{fmt.format_tag:04x} is not integer PCM"
    if fmt.bits_per_sample not in (8, 16, 24):
        return f"{fmt.bits_per_sample}-bit integer PCM"
    if fmt.block_align != fmt.channels * fmt.bits_per_sample // 8:
        return f"block align {fmt.block_align} does not match {fmt.channels} x {fmt.bits_per_sample} bits"
    if not 1 <= fmt.channels <= FLAC_MAX_CHANNELS:
        return f"{fmt.channels} channels"
    if not 1 <= fmt.sample_rate <= FLAC_MAX_RATE or (fmt.sample_rate > 0xFFFF and fmt.sample_rate % 10):
        return f"sample rate {fmt.sample_rate} Hz is outside the FLAC streamable subset"
    return ""


def _walk(f: BinaryIO, start: int, riff_end: int, settled: bool) -> tuple[list[Chunk], str]:
    """The chunk list from ``start`` to ``riff_end`` and a raw reason if the table is odd."""
    chunks: list[Chunk] = []
    pos = start
    while pos < riff_end:
        if len(chunks) >= MAX_CHUNKS:
            return chunks, f"more than {MAX_CHUNKS} chunks"
        head = _read_at(f, pos, 8)
        if len(head) < 8 or pos + 8 > riff_end:
            return chunks, f"{riff_end - pos} stray bytes at the end of the chunk table"
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"data" and size == 0xFFFFFFFF:
            raise _unfinished(settled, "data chunk size is 0xffffffff (recorder still writing)")
        body_end = pos + 8 + size
        if body_end > riff_end:
            if cid == b"data":
                raise _unfinished(settled, f"data chunk says {size} bytes but only {riff_end - pos - 8} are there")
            return chunks, f"chunk {cid!r} runs past the end of the RIFF chunk"
        end = min(body_end + (size & 1), riff_end)
        chunks.append(Chunk(cid, pos, size, end))
        pos = end
    return chunks, ""


def _riff_end(f: BinaryIO, head: bytes, file_size: int, settled: bool) -> tuple[int, str]:
    """Where the RIFF chunk ends, after the in-progress checks (raises), and a raw reason."""
    riff_size = struct.unpack_from("<I", head, 4)[0]
    if head[:4] == b"RF64":
        ds64 = _read_at(f, 12, 36)
        if len(ds64) < 36 or ds64[:4] != b"ds64":
            return file_size, "RF64 without a ds64 chunk"
        size64 = struct.unpack_from("<Q", ds64, 8)[0]
        if size64 + 8 != file_size:
            raise _unfinished(settled, f"RF64 size says {size64 + 8} bytes, the file has {file_size}")
        return file_size, "RF64 container"
    if riff_size in UNFINISHED_SIZES:
        raise _unfinished(settled, f"RIFF size is 0x{riff_size:08x} (recorder still writing)")
    expected = riff_size + 8
    if expected > file_size:
        raise _unfinished(settled, f"RIFF size says {expected} bytes, the file has {file_size}")
    if expected < file_size:
        if not settled:
            raise RecordingNotReady(f"RIFF size says {expected} bytes, the file has {file_size} (still growing?)")
        return expected, f"{file_size - expected} bytes after the end of the RIFF chunk"
    return expected, ""


def _content_reason(f: BinaryIO, chunks: list[Chunk]) -> tuple[PcmFormat | None, Chunk | None, str]:
    fmts = [c for c in chunks if c.cid == b"fmt "]
    datas = [c for c in chunks if c.cid == b"data"]
    if len(datas) != 1 or len(fmts) != 1:
        return None, None, f"{len(fmts)} fmt and {len(datas)} data chunks (need one each)"
    data = datas[0]
    parsed = parse_fmt(_read_at(f, fmts[0].body_offset, min(fmts[0].size, 1024)))
    if isinstance(parsed, str):
        return None, data, parsed
    problem = flac_problem(parsed)
    if problem:
        return parsed, data, problem
    if data.size == 0:
        return parsed, data, "no audio samples"
    if data.size % parsed.block_align:
        return parsed, data, "data size is not a whole number of sample frames"
    if data.size & 1 and (data.end != data.body_offset + data.size + 1 or _read_at(f, data.end - 1, 1) != b"\0"):
        return parsed, data, "odd-sized data chunk without a zero pad byte"
    foreign = [c for c in chunks if c is not data]
    if any(c.end - c.offset > MAX_FOREIGN_BLOCK for c in foreign):
        return parsed, data, "a non-audio chunk larger than a FLAC metadata block"
    if sum(c.end - c.offset for c in foreign) > MAX_FOREIGN_TOTAL:
        return parsed, data, "more than 16 MiB of non-audio chunks"
    return parsed, data, ""


def inspect(f: BinaryIO, file_size: int, *, settled: bool) -> WavLayout:
    """Read the chunk table of an open file. Raises RecordingNotReady / RecordingRejected."""
    if file_size == 0:
        raise RecordingRejected("empty file")
    head = _read_at(f, 0, 12)
    if head[:4] in (b"RIFF", b"RF64") and len(head) < 12:
        raise _unfinished(settled, f"only {len(head)} bytes of RIFF header")
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return WavLayout(file_size, (), None, None, "not a WAV (no RIFF/WAVE header)")
    riff_end, riff_reason = _riff_end(f, head, file_size, settled)
    chunks, table_reason = _walk(f, 12, riff_end, settled)
    fmt, data, content_reason = _content_reason(f, chunks)
    reason = riff_reason or table_reason or content_reason
    return WavLayout(file_size, tuple(chunks), fmt, data, reason)
