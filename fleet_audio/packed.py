"""The general-purpose codec for what FLAC cannot hold (32-bit float WAV, non-WAV files): zstd, in a stream.

Object format ``zstd-v1`` (S3 user metadata ``edgefleet-format``): the object is one zstd frame of the original
file's bytes, unchanged; ``edgefleet-original-size`` and ``edgefleet-original-sha256`` hold what a restore must give
back. Chosen over gzip by measurement (docs/benchmarks.md, "Compression for what FLAC cannot hold"): on float
recordings both save about 8 %, zstd level 3 an order of magnitude faster.

The choice to compress at all is made before the upload starts, from a sample (the first ``SAMPLE_BYTES`` of the
file, all of a smaller file): it must shrink by at least ``MIN_SAVING``; otherwise the file is stored raw.
Decompression is bounded: at most ``2**MAX_WINDOW_LOG`` bytes of window and ``OUT_BLOCK`` bytes per block out.
``zstandard`` loads when it is first used: most uploads are FLAC and never need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, cast

from fleet_audio.errors import RestoreError

if TYPE_CHECKING:
    import zstandard

__all__ = [
    "LEVEL",
    "MAGIC",
    "MIN_SAVING",
    "SAMPLE_BYTES",
    "ZSTD_FORMAT",
    "compress",
    "decompress",
    "saves_enough",
    "size_bound",
]

ZSTD_FORMAT = "zstd-v1"
#: the first bytes of every zstd frame (so of every zstd object)
MAGIC: bytes = b"\x28\xb5\x2f\xfd"  # zstandard.FRAME_HEADER
LEVEL = 3
MIN_SAVING = 0.05
SAMPLE_BYTES = 4 * 1024 * 1024
MAX_WINDOW_LOG = 24  # level 3 writes windows of at most 2**21 bytes; refuse anything absurd on restore
OUT_BLOCK = 256 * 1024
_FRAME_OVERHEAD = 64  # frame header, block headers of a tiny input, checksum


def _compressor() -> zstandard.ZstdCompressor:
    import zstandard

    return zstandard.ZstdCompressor(level=LEVEL, write_content_size=True, write_checksum=True, threads=0)


def saves_enough(sample: bytes) -> bool:
    """Does zstd shrink ``sample`` by at least ``MIN_SAVING``? (An empty sample: no.)"""
    if not sample:
        return False
    return len(_compressor().compress(sample)) <= (1 - MIN_SAVING) * len(sample)


def size_bound(size: int) -> int:
    """The largest object ``compress`` can make of ``size`` bytes (libzstd's ZSTD_COMPRESSBOUND, plus the frame)."""
    small = (128 * 1024 - size) >> 11 if size < 128 * 1024 else 0
    return size + (size >> 8) + small + _FRAME_OVERHEAD


def compress(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """One zstd frame of exactly ``size`` bytes from ``blocks``; the same blocks always give the same bytes."""
    packer = _compressor().compressobj(size=size)
    for block in blocks:
        out = packer.compress(block)
        if out:
            yield out
    tail = packer.flush()
    if tail:
        yield tail


class _Reader:
    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read = read


def decompress(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The bytes of the zstd frame ``read`` gives, in blocks of at most ``OUT_BLOCK`` (the caller checks the size
    and sha256 of what comes out against the object's metadata)."""
    import zstandard

    unpacker = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG)
    try:
        yield from unpacker.read_to_iter(cast(IO[bytes], _Reader(read)), read_size=OUT_BLOCK, write_size=OUT_BLOCK)
    except zstandard.ZstdError as exc:
        raise RestoreError(f"not a valid zstd object: {exc}") from None
