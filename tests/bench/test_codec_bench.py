"""Codec throughput on loopback (no network): WAV MB/s through ObjectSource.body() against ``flac -5`` alone.

Run: .venv/bin/pytest -m bench tests/bench/test_codec_bench.py -s
(EDGEFLEET_BENCH_CODEC_SECONDS sets the length of each realistic stereo 48 kHz 16-bit file; default 600 s =
115 MB). Each measurement runs interleaved with its peer, best of 3, on the same files in the same run; the
results table is printed and written to $EDGEFLEET_BENCH_OUT (default: docs/bench/codec-last-run.md).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet_audio.source import open_source
from tests.corpus import write_wav

pytestmark = pytest.mark.bench
TARGET = 0.8
REPEATS = 3


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + system seconds (this process and its children)


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(work: Callable[[], None]) -> Run:
    cpu, start = _cpu(), time.perf_counter()
    work()
    return Run(time.perf_counter() - start, _cpu() - cpu)


def _encode_ours(path: Path) -> None:
    source = open_source(path, 5)
    try:
        for _block in source.body():
            pass
        source.header()
    finally:
        source.close()


def _encode_flac_tool(path: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["flac", "-5", "-s", "-f", "-o", str(out), str(path)])


def _parallel_ours(paths: list[Path]) -> None:
    threads = [threading.Thread(target=_encode_ours, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _parallel_flac(paths: list[Path], outdir: Path) -> None:
    procs = [_encode_flac_tool(p, outdir / f"{p.stem}.flac") for p in paths]
    for proc in procs:
        assert proc.wait() == 0


def _best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def _row(name: str, mb: float, flac: Run, ours: Run) -> str:
    ratio = flac.wall / ours.wall
    busy = f"{flac.cpu / flac.wall:.2f} / {ours.cpu / ours.wall:.2f}"
    return f"| {name} | {mb / flac.wall:.1f} | {mb / ours.wall:.1f} | {ratio:.2f} | {busy} |"


@pytest.mark.skipif(shutil.which("flac") is None, reason="needs the Debian flac tool")
def test_codec_throughput_against_flac_tool(tmp_path: Path) -> None:
    seconds = float(os.environ.get("EDGEFLEET_BENCH_CODEC_SECONDS", "600"))
    paths = [write_wav(tmp_path / f"field{i}.wav", seconds, 48000, 2, 16, "field", seed=i) for i in (1, 2)]
    size = paths[0].stat().st_size
    mb = size / 1e6
    single: dict[str, list[Run]] = {"ours": [], "flac": []}
    double: dict[str, list[Run]] = {"ours": [], "flac": []}
    for _ in range(REPEATS):
        single["flac"].append(_timed(lambda: _parallel_flac(paths[:1], tmp_path)))
        single["ours"].append(_timed(lambda: _encode_ours(paths[0])))
        double["flac"].append(_timed(lambda: _parallel_flac(paths, tmp_path)))
        double["ours"].append(_timed(lambda: _parallel_ours(paths)))
    s_ours, s_flac = _best(single["ours"]), _best(single["flac"])
    d_ours, d_flac = _best(double["ours"]), _best(double["flac"])
    flac_ratio = (tmp_path / "field1.flac").stat().st_size / size
    rows = [_row("one file", mb, s_flac, s_ours), _row("two files in parallel", 2 * mb, d_flac, d_ours)]
    lines = [
        f"realistic field recording, stereo 48 kHz 16-bit, {mb:.1f} MB per file, flac -5 output {flac_ratio:.1%}"
        f" of the WAV, {os.cpu_count()} cores, best of {REPEATS}",
        "",
        "| case | `flac -5` MB/s | edgefleet body() MB/s | ratio (edgefleet / flac) | cores busy flac / edgefleet |",
        "|---|---|---|---|---|",
        *rows,
    ]
    report = "\n".join(lines)
    print("\n" + report)
    out = Path(os.environ.get("EDGEFLEET_BENCH_OUT", "docs/bench/codec-last-run.md"))
    if out.parent.is_dir():
        out.write_text(report + "\n")
    assert s_flac.wall / s_ours.wall >= TARGET
    assert d_flac.wall / d_ours.wall >= TARGET
