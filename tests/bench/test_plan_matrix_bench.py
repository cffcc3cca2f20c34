"""The matrix of issue 10 (marked ``bench``; root): a slower CPU × a slower link, four uploaders side by side.

    EDGEFLEET_BENCH_MB=200 .venv/bin/python -m pytest -m bench tests/bench/test_plan_matrix_bench.py -s

Cells: CPU quota 25 %, 100 %, 200 % of one core (a cgroup v1 ``cpu`` child group the uploaders run in) × link
4, 40, 400 Mbit/s (``tc tbf`` on a veth pair; SeaweedFS in its own network namespace on the far side). In each
cell, one after the other on the same link and quota: ``edgefleet upload`` without ``--compression-level``
(adaptive), forced raw (``-1``), forced FLAC 5, and ``rclone copy`` (raw, its defaults). Ratios: adaptive ÷
min(raw, FLAC 5) (target ≤ 1.05) and rclone ÷ adaptive.

Environment: ``EDGEFLEET_BENCH_MB`` (200: the batch, 4 realistic WAVs from tests/corpus.py),
``EDGEFLEET_BENCH_QUOTAS`` ("25,100,200"), ``EDGEFLEET_BENCH_RATES_MBIT`` ("4,40,400"), ``EDGEFLEET_BENCH_DIR``
(/tmp/edgefleet-bench-plan: cached WAVs, plan-results.jsonl). ``-k 'q25 and 40mbit'`` runs one cell.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefleet.localservices import SeaweedS3
from tests.bench.lab import (
    ADAPTIVE,
    ALL,
    FLAC5,
    RAW,
    RCLONE,
    Run,
    cpu_quota,
    env_mb,
    link_plan,
    machine,
    record,
    upload,
    wav_batch,
)
from tests.shapedlink import LinkPlan, change_rate, s3_behind_shaped_link

pytestmark = [pytest.mark.bench, pytest.mark.timeout(4 * 3600)]
BATCH_MB = env_mb("EDGEFLEET_BENCH_MB", 200)
QUOTAS = [int(q) for q in os.environ.get("EDGEFLEET_BENCH_QUOTAS", "25,100,200").split(",")]
RATES = [float(r) for r in os.environ.get("EDGEFLEET_BENCH_RATES_MBIT", "4,40,400").split(",")]
TABLE: list[str] = []
HEAD = """| CPU | link | batch MB | adaptive s | raw s | FLAC 5 s | rclone s | adaptive ÷ best | rclone ÷ adaptive |
|---|---|---:|---:|---:|---:|---:|---:|---:|
"""


@pytest.fixture(scope="module")
def link() -> Iterator[tuple[SeaweedS3, LinkPlan]]:
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("rclone"):
        pytest.skip("needs root, tc and rclone")
    plan = link_plan("efmx", 10, RATES[0])
    try:
        with s3_behind_shaped_link(plan, "efmx-s3-") as s3:
            yield s3, plan
    finally:
        print("\n" + HEAD + "\n".join(TABLE))


def ratios(runs: dict[str, Run]) -> tuple[float, float]:
    best = min(runs[RAW.name].seconds, runs[FLAC5.name].seconds)
    adaptive = runs[ADAPTIVE.name].seconds
    return adaptive / best, runs[RCLONE.name].seconds / adaptive


@pytest.mark.parametrize("rate", RATES, ids=[f"{r:g}mbit" for r in RATES])
@pytest.mark.parametrize("quota", QUOTAS, ids=[f"q{q}" for q in QUOTAS])
def test_cell(link: tuple[SeaweedS3, LinkPlan], tmp_path: Path, quota: int, rate: float) -> None:
    s3, plan = link
    files = wav_batch(BATCH_MB)
    change_rate(plan, rate)
    runs: dict[str, Run] = {}
    with cpu_quota(quota) as group:
        for who in ALL:
            runs[who.name] = upload(who, files, s3, tmp_path, plan=plan, group=group)
    over_best, rclone_over = ratios(runs)
    record("plan_matrix", cpu_percent=quota, rate_mbit=rate, batch_mb=BATCH_MB, runs=list(runs.values()),
           adaptive_over_best=round(over_best, 3), rclone_over_adaptive=round(rclone_over, 3),
           machine=machine())  # fmt: skip
    s = {k: r.seconds for k, r in runs.items()}
    TABLE.append(
        f"| {quota} % | {rate:g} Mbit/s | {BATCH_MB:g} | {s['adaptive']:.1f} | {s['raw']:.1f} | {s['flac5']:.1f} | "
        f"{s['rclone']:.1f} | {over_best:.2f} | {rclone_over:.2f} |"
    )
    assert all(r.ok for r in runs.values()), [r.tail for r in runs.values() if not r.ok]
    assert over_best <= 1.05
