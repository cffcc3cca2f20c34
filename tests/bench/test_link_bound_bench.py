"""Link-bound (issue 10; marked ``bench``; root): a 16 Mbit/s link the whole CPU can outrun.

    .venv/bin/python -m pytest -m bench tests/bench/test_link_bound_bench.py -s

``tc tbf`` at 16 Mbit/s on a veth pair, SeaweedFS in its own network namespace; the realistic WAV batch of
tests/corpus.py (``EDGEFLEET_BENCH_MB``, 200). ``edgefleet upload`` without ``--compression-level`` (adaptive: it
should pick the highest level the CPU sustains at this rate), then forced FLAC 5 and forced FLAC 8 in the same
run for reference. Link efficiency = stored bytes ÷ link rate ÷ wall time; target ≥ 95 % for adaptive.

The nominal rate is what ``tc`` counts: IP packets with their headers, so even a perfect uploader stores at most
1448 / 1514 ≈ 95.6 % of it. The same run therefore also measures the *goodput* of one plain TCP stream through
the same link (``GOODPUT_MB`` of zeros to a sink in the server's namespace, from connect to the sink's close)
and states each uploader's stored bytes ÷ that goodput ÷ wall time beside the nominal efficiency. Each run's
start-up (seconds from the process start to the milestones of its ``-vv`` log: first log line, plan, first S3
answer, upload created, first part's connection) is printed too.

Environment: ``EDGEFLEET_BENCH_MB`` (200; a bigger batch spreads the fixed start-up over more bytes),
``EDGEFLEET_BENCH_LB_UPLOADERS`` (``adaptive,flac5,flac8``: which of them run, in that order).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefleet.localservices import SeaweedS3
from tests.bench.lab import ADAPTIVE, FLAC5, Run, Uploader, env_mb, link_plan, machine, record, upload, wav_batch
from tests.shapedlink import LinkPlan, s3_behind_shaped_link

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]
RATE_MBIT = 16.0
BATCH_MB = env_mb("EDGEFLEET_BENCH_MB", 200)
FLAC8 = Uploader("flac8", "8")
UPLOADERS = [
    who
    for who in (ADAPTIVE, FLAC5, FLAC8)
    if who.name in os.environ.get("EDGEFLEET_BENCH_LB_UPLOADERS", "adaptive,flac5,flac8").split(",")
]
GOODPUT_MB = 16  # 8 s of the link
SINK_PORT = 9099
SINK = (
    "import socket,sys\n"
    "s=socket.create_server((sys.argv[1],int(sys.argv[2])))\n"
    "print('ready',flush=True)\n"
    "c,_=s.accept()\n"
    "while c.recv(1<<20):\n"
    "    pass\n"
    "c.close()\n"
)


def tcp_goodput(plan: LinkPlan, megabytes: float = GOODPUT_MB) -> float:
    """Bytes/s of payload one plain TCP stream moves through the link: ``megabytes`` from connect until the
    sink in the server's namespace has read them all and closed."""
    sink = subprocess.Popen(
        ["ip", "netns", "exec", plan.namespace, sys.executable, "-c", SINK, plan.ns_ip, str(SINK_PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        assert sink.stdout.readline().strip() == "ready"
        payload = bytes(1 << 20)
        start = time.perf_counter()
        with socket.create_connection((plan.ns_ip, SINK_PORT), timeout=120) as conn:
            for _ in range(int(megabytes)):
                conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # b"" once the sink read everything and closed
        return int(megabytes) * len(payload) / (time.perf_counter() - start)
    finally:
        sink.wait(timeout=60)


@pytest.fixture(scope="module")
def link() -> Iterator[tuple[SeaweedS3, LinkPlan]]:
    if os.geteuid() != 0 or not shutil.which("tc"):
        pytest.skip("needs root and tc")
    plan = link_plan("eflb", 30, RATE_MBIT)
    with s3_behind_shaped_link(plan, "eflb-s3-") as s3:
        yield s3, plan


def efficiency(run: Run) -> float:
    return run.stored_bytes / (RATE_MBIT * 1e6 / 8) / run.seconds


def test_link_bound(link: tuple[SeaweedS3, LinkPlan], tmp_path: Path) -> None:
    s3, plan = link
    files = wav_batch(BATCH_MB)
    goodput = [tcp_goodput(plan)]
    runs = [upload(who, files, s3, tmp_path, plan=plan, timeline=True) for who in UPLOADERS]
    goodput.append(tcp_goodput(plan))  # before and after: the link did not change meanwhile
    good = min(goodput)
    eff = {r.uploader: round(efficiency(r), 3) for r in runs}
    of_goodput = {r.uploader: round(r.stored_bytes / good / r.seconds, 3) for r in runs}
    record("link_bound", rate_mbit=RATE_MBIT, batch_mb=BATCH_MB, runs=runs, efficiency=eff,
           tcp_goodput_bps=[round(g) for g in goodput], efficiency_of_goodput=of_goodput,
           machine=machine())  # fmt: skip
    print(f"\nplain TCP goodput through the link: {[f'{g / 1e6:.4f} MB/s' for g in goodput]} = "
          f"{good / (RATE_MBIT * 1e6 / 8):.2%} of the nominal rate")  # fmt: skip
    print("| uploader | efficiency (nominal) | efficiency (of TCP goodput) | start-up milestones s |")
    print("|---|---:|---:|---|")
    for r in runs:
        print(f"| {r.uploader} | {eff[r.uploader]:.1%} | {of_goodput[r.uploader]:.1%} | {r.startup} |")
    # where the wall time goes: before the link's first bytes, the link's bytes at its rate (framing included),
    # the link not full in the middle of the run, after its last byte
    print("\n| uploader | stored MB | stored ÷ WAV | wall s | stored ÷ link rate s | efficiency | link bytes ÷ stored "
          "| head s | link bytes ÷ rate s | under-used middle s | tail s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        ideal, busy = r.stored_bytes / (RATE_MBIT * 1e6 / 8), r.link_bytes / (RATE_MBIT * 1e6 / 8)
        head, tail = r.link_head_s or 0.0, r.link_tail_s or 0.0
        print(f"| {r.uploader} | {r.stored_bytes / 1e6:.1f} | {r.stored_bytes / r.wav_bytes:.3f} | {r.seconds:.1f} | "
              f"{ideal:.1f} | {eff[r.uploader]:.1%} | {r.link_bytes / max(1, r.stored_bytes):.4f} | {head:.2f} | "
              f"{busy:.1f} | {r.seconds - head - tail - busy:.2f} | {tail:.2f} |")  # fmt: skip
    assert all(r.ok for r in runs), [r.tail for r in runs if not r.ok]
    assert eff[ADAPTIVE.name] >= 0.95
