"""The central transcoder's throughput against ``flac -5`` on the same files, and zstd vs gzip on float recordings.

Run: .venv/bin/python -m pytest -m bench tests/bench/test_transcoder_bench.py -s
(EDGEFLEET_BENCH_TRANSCODE_SECONDS: length of each stereo 48 kHz file, default 60 s = 11.5 MB as 16-bit and
23 MB as float). Per-core rates are WAV bytes ÷ CPU seconds (user + system) of the process doing the work, so
a shared machine's load changes them less than wall time; the transcoder's and the flac command's runs are
interleaved file by file in the same run. Results are printed and written to $EDGEFLEET_BENCH_OUT (default:
docs/bench/transcoder-last-run.md).
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import zstandard

from controller.store.database import make_engine
from controller.store.schema import migrate
from controller.transcoder.metrics import TranscoderMetrics
from controller.transcoder.work import Worker
from edgefleet.localservices import SeaweedS3
from tests.corpus import Kind, write_wav
from tests.integration.controller.transcoder.helpers import config, jobs, put_raw, record_raw_upload

pytestmark = pytest.mark.bench
SECONDS = float(os.environ.get("EDGEFLEET_BENCH_TRANSCODE_SECONDS", "60"))
BLOCK = 256 * 1024
MB = 1e6


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _timed(work: Callable[[], object], who: int = resource.RUSAGE_SELF) -> tuple[float, float]:
    cpu, start = _cpu(who), time.perf_counter()
    work()
    return time.perf_counter() - start, _cpu(who) - cpu


def _pack_into(sizes: list[int], codec: Callable[[bytes], int], data: bytes) -> None:
    sizes.append(codec(data))


def _report(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = Path(os.environ.get("EDGEFLEET_BENCH_OUT", "docs/bench/transcoder-last-run.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.write(f"\n<!-- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f} -->\n" + text)


def test_transcoder_throughput_against_the_flac_command(s3_server: SeaweedS3, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    engine = make_engine(url)
    migrate(engine)
    client, bucket = s3_server.client(), s3_server.bucket
    worker = Worker(config(url, s3_server, worker_id="bench", part_size_mb=8), engine, client, TranscoderMetrics())
    kinds: tuple[Kind, ...] = ("field", "voice", "music", "field")
    ours_cpu = ours_wall = flac_cpu = flac_wall = 0.0
    total = 0
    for i, kind in enumerate(kinds):
        path = write_wav(tmp_path / f"{kind}-{i}.wav", SECONDS, 48000, 2, kind=kind, seed=100 + i)
        key = put_raw(client, bucket, "bench", "pi-hot", path)
        record_raw_upload(engine, "pi-hot", key, path, i)
        worker.poll()
        wall, cpu = _timed(worker.run_once)
        ours_wall, ours_cpu = ours_wall + wall, ours_cpu + cpu
        cmd = ["flac", "-5", "-s", "-f", "-o", str(tmp_path / "out.flac"), str(path)]
        wall, cpu = _timed(partial(subprocess.run, cmd, check=True), resource.RUSAGE_CHILDREN)
        flac_wall, flac_cpu = flac_wall + wall, flac_cpu + cpu
        total += path.stat().st_size
    done = jobs(engine)
    assert [job.state for job in done] == ["done"] * len(kinds)
    ratio = sum(j.stored_bytes for j in done) / sum(j.original_bytes for j in done)
    _report(
        [
            f"### transcoder vs flac -5: {len(kinds)} files, {total / MB:.1f} MB WAV, FLAC keeps {ratio:.1%}",
            "",
            "| what | WAV MB/s per core (CPU) | WAV MB/s (wall) |",
            "|---|---|---|",
            f"| transcoder job: S3 GET + encode + multipart + verify (restore) + delete | {total / MB / ours_cpu:.1f} "
            f"| {total / MB / ours_wall:.1f} |",
            f"| `flac -5` local file to local file | {total / MB / flac_cpu:.1f} | {total / MB / flac_wall:.1f} |",
            f"| ratio transcoder ÷ flac | **{flac_cpu / ours_cpu:.2f}** | {flac_wall / ours_wall:.2f} |",
        ]
    )


def _blocks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), BLOCK):
        yield data[i : i + BLOCK]


def _zstd(level: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        packer = zstandard.ZstdCompressor(level=level, write_content_size=True).compressobj(size=len(data))
        return sum(len(packer.compress(b)) for b in _blocks(data)) + len(packer.flush())

    return run


def _gzip(level: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # the gzip container
        return sum(len(packer.compress(b)) for b in _blocks(data)) + len(packer.flush())

    return run


def test_float_compression_zstd_levels_against_gzip(tmp_path: Path) -> None:
    codecs = {f"zstd {n}": _zstd(n) for n in (1, 3, 9, 19)} | {f"gzip {n}": _gzip(n) for n in (1, 6, 9)}
    files = [
        write_wav(tmp_path / f"{kind}.f32.wav", SECONDS, 48000, 2, kind=kind, float32=True, seed=7)
        for kind in ("field", "voice", "music")
    ]
    stored = dict.fromkeys(codecs, 0)
    cpu = dict.fromkeys(codecs, 0.0)
    total = 0
    for path in files:
        data = path.read_bytes()
        total += len(data)
        for name, codec in codecs.items():  # interleaved: every codec on this file before the next file
            sizes: list[int] = []
            cpu[name] += _timed(partial(_pack_into, sizes, codec, data))[1]
            stored[name] += sizes[0]
    lines = [
        f"### float32 recordings: {len(files)} files (field, voice, music), {total / MB:.1f} MB, 256 KiB blocks",
        "",
        "| codec | stored ÷ original | saves | MB/s per core (CPU) |",
        "|---|---|---|---|",
    ]
    for name in codecs:
        kept = stored[name] / total
        lines.append(f"| {name} | {kept:.3f} | {1 - kept:.1%} | {total / MB / cpu[name]:.0f} |")
    _report(lines)
