"""What a byte range of a zstd object costs the dashboard (``dashboard.media.UnpackedBody``): a range at offset o
decompresses everything before it. Measured on a realistic float recording (``tests.corpus``, 32-bit float,
stored as the agent stores it), in memory (no S3: the CPU cost alone), side by side with the same range of the
raw WAV (a slice: what a range of a raw object costs the dashboard's CPU, next to nothing).

    EDGEFLEET_BENCH_ZSTD_SECONDS=120 .venv/bin/python -m pytest -m bench tests/bench/test_zstd_range_bench.py -s
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.media import ObjectBody, UnpackedBody
from fleet_audio import packed
from tests.corpus import write_wav

pytestmark = pytest.mark.bench
RANGE = 64 * 1024


class _Response:
    """The object's bytes as minio's response streams them."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, block: int) -> Iterator[bytes]:
        for at in range(0, len(self.data), block):
            yield self.data[at : at + block]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _serve(stored: bytes, start: int) -> tuple[bytes, float]:
    cpu = time.process_time()
    body = UnpackedBody(ObjectBody(_Response(stored)), start, RANGE)
    data = b"".join(body)
    return data, time.process_time() - cpu


def test_range_cost_of_a_zstd_float_recording(tmp_path: Path) -> None:
    seconds = float(os.environ.get("EDGEFLEET_BENCH_ZSTD_SECONDS", "120"))
    path = write_wav(tmp_path / "bats.f32.wav", seconds, 48000, 2, kind="field", float32=True, seed=11)
    original = path.read_bytes()
    blocks = [original[at : at + (1 << 20)] for at in range(0, len(original), 1 << 20)]
    stored = b"".join(packed.compress(blocks, len(original)))
    print(f"\noriginal {len(original) / 1e6:.1f} MB, zstd {len(stored) / 1e6:.1f} MB")
    print("| range at | zstd: CPU s | raw slice: CPU s | zstd MB/s of skipped original per CPU s |")
    for fraction in (0.0, 0.5, 1.0):
        start = min(len(original) - RANGE, int(len(original) * fraction))
        data, zstd_s = _serve(stored, start)
        cpu = time.process_time()
        expected = original[start : start + RANGE]
        slice_s = time.process_time() - cpu
        assert data == expected
        rate = (start + RANGE) / 1e6 / zstd_s if zstd_s else float("inf")
        print(f"| {fraction:.0%} | {zstd_s:.3f} | {slice_s:.4f} | {rate:.0f} |")
