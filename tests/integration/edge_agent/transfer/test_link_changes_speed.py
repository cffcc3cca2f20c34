"""A link that changes speed in the middle of an upload (``tc tbf`` on a veth pair to SeaweedFS in its own
network namespace, tests/shapedlink.py; needs root): 16 Mbit/s, then 2 Mbit/s, then 16 Mbit/s again, while one
320 MiB file is on its way with an assignment of 8 parts of 8 MiB in flight. The engine's measured rate (from
completed parts, and bounded by the parts still on the wire) follows each step, the thin-link guard lowers the
parts in flight when 8 parts could no longer finish in time and gives them back when the link is fast again, and
the whole file arrives with no part sent twice. The file is long enough for parts to be on the wire through all
three steps (at 2 Mbit/s a round of 8 parts of 8 MiB takes 4.5 min)."""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.linkguard import guard
from edge_agent.transfer import Engine
from edgefleet.localservices import SeaweedS3
from fleet_audio.restore import verify_object
from tests.integration.edge_agent.transfer.helpers import settings_via
from tests.integration.edge_agent.transfer.test_faults import Make
from tests.shapedlink import LinkPlan, change_rate, s3_behind_shaped_link
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]  # ~8 min over tc tbf: -m slow
FAST_MBIT, SLOW_MBIT = 16.0, 2.0
LIMITS = Limits(concurrency=8, part_size=8 * MiB, compression_level=-1)


def bps(mbit: float) -> float:
    return mbit * 1e6 / 8


@pytest.fixture(scope="module")
def link() -> Iterator[tuple[SeaweedS3, LinkPlan]]:
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("ip"):
        pytest.skip("needs root, tc and ip (a network namespace behind a tc tbf link)")
    tag = f"efs{os.getpid() % 16_000}"
    a, b = divmod((os.getpid() % 16_000) * 4, 256)
    plan = LinkPlan(tag, f"{tag}h", f"{tag}n", f"10.234.{a}.{b + 1}", f"10.234.{a}.{b + 2}", FAST_MBIT)
    with s3_behind_shaped_link(plan, "efspeed-s3-") as s3:
        yield s3, plan


def follows(engine: Engine, mbit: float, what: str) -> None:
    """The measured rate comes within 30 % of ``mbit`` and the guard's parts in flight are what that rate
    allows (generous ceiling: a step down is seen as the parts on the wire overrun, which at 2 Mbit/s takes
    minutes for 8 MiB parts; the estimate then follows to 95 % in 30 s of busy time)."""

    def settled() -> bool:
        s = engine.stats()
        expected = guard(LIMITS, s.throughput_bps).concurrency if s.throughput_bps else -1
        return 0.7 * bps(mbit) < s.throughput_bps < 1.3 * bps(mbit) and s.effective_concurrency == expected

    wait_for(settled, timeout=600, what=lambda: f"{what}: {engine.stats()}", interval=0.2)


def test_the_plan_follows_a_link_that_changes_speed(
    link: tuple[SeaweedS3, LinkPlan], make_engine: Make, tmp_path: Path
) -> None:
    s3, plan = link
    path = tmp_path / "long.bin"  # raw bytes: what goes over the link is the file, nothing to estimate
    rng = random.Random(16)
    with path.open("wb") as f:
        for _ in range(20):  # (randbytes takes at most 256 MiB at once)
            f.write(rng.randbytes(16 * MiB))
    engine, _ = make_engine(settings_via(s3), LIMITS, stall_timeout_s=30.0)
    engine.enqueue(path)
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(engine.run_until_idle()), daemon=True)
    runner.start()
    follows(engine, FAST_MBIT, "fast link measured")
    assert engine.stats().effective_concurrency == 8  # 8 x 8 MiB finish in time at 2 MB/s
    change_rate(plan, SLOW_MBIT)
    follows(engine, SLOW_MBIT, "slow link measured")
    # 250 kB/s x 80 s holds three 5 MiB parts; an estimate up to 30 % above it (what follows() accepts), four
    assert engine.stats().effective_concurrency in (3, 4)
    change_rate(plan, FAST_MBIT)
    follows(engine, FAST_MBIT, "fast again")
    assert engine.stats().effective_concurrency == 8
    runner.join(timeout=900)
    report = result[0]
    assert getattr(report, "ok", False), report
    assert engine.stats().retries_total == 0
    assert verify_object(s3.client(), s3.bucket, report.results[0].key, path).matches  # type: ignore[attr-defined]
