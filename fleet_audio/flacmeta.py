"""FLAC metadata blocks of an edgefleet object (pure: bytes in, bytes out).

Object layout (docs/audio-format.md):

    "fLaC"
    STREAMINFO                         34 bytes, final only after the last frame (sample count, MD5, frame sizes)
    APPLICATION "riff" x N             one RIFF piece each, in file order, as ``flac --keep-foreign-metadata``
                                       writes them: "RIFF"+size+"WAVE", every chunk whole (pad byte included),
                                       for the data chunk only its 8-byte header
    APPLICATION "edgf" (last block)    format version, original size, original sha256 (fixed length)
    frames ...
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from fleet_audio.errors import RestoreError

MAGIC = b"fLaC"
STREAMINFO = 0
APPLICATION = 2
RIFF_ID = b"riff"
EDGF_ID = b"edgf"
EDGF_VERSION = 1
_EDGF = struct.Struct(">HHQ32s")  # version, reserved, original size, sha256
EDGF_BLOCK_SIZE = 4 + 4 + _EDGF.size
STREAMINFO_BLOCK_SIZE = 4 + 34
MAX_BLOCK = (1 << 24) - 1


@dataclass(frozen=True)
class StreamInfo:
    min_blocksize: int
    max_blocksize: int
    min_framesize: int
    max_framesize: int
    sample_rate: int
    channels: int
    bits_per_sample: int
    total_samples: int
    md5: bytes

    def pack(self) -> bytes:
        packed = (self.sample_rate << 44) | ((self.channels - 1) << 41) | ((self.bits_per_sample - 1) << 36)
        packed |= self.total_samples & ((1 << 36) - 1)
        return (
            struct.pack(">HH", self.min_blocksize, self.max_blocksize)
            + self.min_framesize.to_bytes(3, "big")
            + self.max_framesize.to_bytes(3, "big")
            + packed.to_bytes(8, "big")
            + self.md5
        )

    @classmethod
    def unpack(cls, payload: bytes) -> StreamInfo:
        if len(payload) != 34:
            raise RestoreError(f"STREAMINFO has {len(payload)} bytes, expected 34")
        min_bs, max_bs = struct.unpack_from(">HH", payload)
        packed = int.from_bytes(payload[10:18], "big")
        return cls(
            min_bs,
            max_bs,
            int.from_bytes(payload[4:7], "big"),
            int.from_bytes(payload[7:10], "big"),
            packed >> 44,
            ((packed >> 41) & 0x7) + 1,
            ((packed >> 36) & 0x1F) + 1,
            packed & ((1 << 36) - 1),
            payload[18:34],
        )


@dataclass(frozen=True)
class EdgfInfo:
    original_size: int
    sha256: str  # hex
    version: int = EDGF_VERSION

    def pack(self) -> bytes:
        return EDGF_ID + _EDGF.pack(self.version, 0, self.original_size, bytes.fromhex(self.sha256))

    @classmethod
    def unpack(cls, payload: bytes) -> EdgfInfo:
        if len(payload) != 4 + _EDGF.size or payload[:4] != EDGF_ID:
            raise RestoreError("malformed edgf block")
        version, _reserved, size, digest = _EDGF.unpack(payload[4:])
        if version != EDGF_VERSION:
            raise RestoreError(f"edgf format version {version} is not supported (this build reads {EDGF_VERSION})")
        return cls(size, digest.hex(), version)


def block(block_type: int, payload: bytes, *, last: bool = False) -> bytes:
    if len(payload) > MAX_BLOCK:
        raise ValueError(f"metadata block of {len(payload)} bytes is too large")
    return bytes([block_type | (0x80 if last else 0)]) + len(payload).to_bytes(3, "big") + payload


def header_size(foreign: list[bytes]) -> int:
    """Size of the header built by build_header for these RIFF pieces (known before encoding)."""
    return len(MAGIC) + STREAMINFO_BLOCK_SIZE + sum(4 + 4 + len(p) for p in foreign) + EDGF_BLOCK_SIZE


def build_header(info: StreamInfo, foreign: list[bytes], edgf: EdgfInfo) -> bytes:
    parts = [MAGIC, block(STREAMINFO, info.pack())]
    parts += [block(APPLICATION, RIFF_ID + piece) for piece in foreign]
    parts.append(block(APPLICATION, edgf.pack(), last=True))
    return b"".join(parts)


PLACEHOLDER_EDGF = EdgfInfo(0, hashlib.sha256().hexdigest())


@dataclass(frozen=True)
class ParsedHeader:
    raw: bytes  # the header bytes as read (fed to the decoder again)
    streaminfo: StreamInfo
    foreign: list[bytes]  # RIFF pieces in order
    edgf: EdgfInfo | None


def read_header(read: Callable[[int], bytes]) -> ParsedHeader:
    """Parse the metadata blocks from a reader returning exactly n bytes (fewer only at the end)."""
    raw = bytearray(read(4))
    if bytes(raw) != MAGIC:
        raise RestoreError("not a FLAC stream")
    streaminfo: StreamInfo | None = None
    foreign: list[bytes] = []
    edgf: EdgfInfo | None = None
    last = False
    while not last:
        head = read(4)
        if len(head) < 4:
            raise RestoreError("FLAC header ends early")
        last, block_type, length = bool(head[0] & 0x80), head[0] & 0x7F, int.from_bytes(head[1:], "big")
        payload = read(length)
        if len(payload) < length:
            raise RestoreError("FLAC metadata block ends early")
        raw += head + payload
        if block_type == STREAMINFO:
            streaminfo = StreamInfo.unpack(payload)
        elif block_type == APPLICATION and payload[:4] == RIFF_ID:
            foreign.append(payload[4:])
        elif block_type == APPLICATION and payload[:4] == EDGF_ID:
            edgf = EdgfInfo.unpack(payload)
    if streaminfo is None:
        raise RestoreError("FLAC stream without STREAMINFO")
    return ParsedHeader(bytes(raw), streaminfo, foreign, edgf)
