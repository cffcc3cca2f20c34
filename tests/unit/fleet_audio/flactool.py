"""Helpers shared by the codec tests: build objects from a source, run the reference ``flac`` tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

from fleet_audio.source import ObjectSource, open_source
from tests.corpus import bext_payload, list_info_payload

# Non-audio chunks before and after the data, with odd sizes (pad bytes).
EXTRA_CHUNKS = [
    (b"bext", bext_payload(), "before"),
    (b"odd!", b"abcde", "before"),
    (b"LIST", list_info_payload(INAM="wren", IART="pi-3"), "after"),
    (b"iXML", b"<BWFXML><NOTE>x</NOTE></BWFXML>", "after"),
]

needs_flac = pytest.mark.skipif(shutil.which("flac") is None, reason="Debian flac tool not installed")


def object_bytes(source: ObjectSource) -> bytes:
    body = b"".join(source.body())
    return source.header() + body


def encode_file(path: Path, level: int = 5, read_block: int = 256 * 1024) -> tuple[ObjectSource, bytes]:
    source = open_source(path, level, read_block=read_block)
    try:
        return source, object_bytes(source)
    finally:
        source.close()


def flac_test(flac_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["flac", "-t", "-s", str(flac_path)], capture_output=True, text=True, check=False)


def flac_decode_foreign(flac_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["flac", "-d", "-s", "-f", "--keep-foreign-metadata", "-o", str(out), str(flac_path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def metaflac_show(flac_path: Path) -> dict[str, str]:
    cmd = ["metaflac", "--show-bps", "--show-total-samples", "--show-md5sum", "--show-channels", str(flac_path)]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(["bps", "total_samples", "md5", "channels"], lines, strict=True))


def unpacked(source: ObjectSource, obj: bytes) -> bytes:
    """The file's bytes from a raw or zstd object (what FLAC cannot hold), decompressed by zstd itself."""
    return zstandard.ZstdDecompressor().decompress(obj) if source.kind == "zstd" else obj
