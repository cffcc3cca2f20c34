"""A whole file over a thin link: 256 KiB/s (``tc tbf`` on a veth pair to SeaweedFS in its own network
namespace, tests/shapedlink.py; needs root), 5 MiB parts, a 10 s stall timeout, and an assignment of 8 parts
in flight. Before: each part hit the whole-request timeout and was sent again forever. Now: every part is sent
once, and the engine measures the link and lowers its own concurrency."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits, MiB
from edgefleet.localservices import SeaweedS3
from fleet_audio.restore import verify_object
from tests.integration.edge_agent.transfer.helpers import PART, settings_via
from tests.integration.edge_agent.transfer.test_faults import Make
from tests.shapedlink import LinkPlan, s3_behind_shaped_link

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~1 min over a real tc tbf link: -m slow
LINK_BPS = 256 * 1024


def _plan() -> LinkPlan:
    """Names and a /30 of this process, so runs side by side do not collide."""
    pid = os.getpid() % 16_000
    a, b = divmod(pid * 4, 256)
    tag = f"efw{pid}"
    return LinkPlan(
        namespace=tag,
        host_if=f"{tag}h",
        ns_if=f"{tag}n",
        host_ip=f"10.232.{a}.{b + 1}",
        ns_ip=f"10.232.{a}.{b + 2}",
        rate_mbit=LINK_BPS * 8 / 1e6,
    )


def _sent_bytes(interface: str) -> int:
    out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", interface], capture_output=True, text=True).stdout
    match = re.search(r"Sent (\d+) bytes", out)
    assert match, out
    return int(match.group(1))


@pytest.fixture(scope="module")
def thin() -> Iterator[tuple[SeaweedS3, LinkPlan]]:
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("ip"):
        pytest.skip("needs root, tc and ip (a network namespace behind a tc tbf link)")
    plan = _plan()
    with s3_behind_shaped_link(plan, "efthin-s3-") as s3:
        yield s3, plan


def test_a_whole_file_arrives_over_a_thin_link_with_no_part_sent_twice(
    thin: tuple[SeaweedS3, LinkPlan], make_engine: Make, tmp_path: Path
) -> None:
    s3, plan = thin
    path = tmp_path / "thin.bin"  # not a WAV: raw parts of 8 and 4 MiB (planned before the link was measured)
    path.write_bytes(random.Random(256).randbytes(12 * MiB))
    limits = Limits(concurrency=8, part_size=8 * MiB, compression_level=-1)
    engine, _ = make_engine(settings_via(s3), limits, stall_timeout_s=10.0)
    engine.enqueue(path)
    before = _sent_bytes(plan.host_if)
    report = engine.run_until_idle()
    assert report.ok, report
    stats = engine.stats()
    assert stats.retries_total == 0
    on_the_link = _sent_bytes(plan.host_if) - before  # IP packets: payload, headers, TCP/IP overhead
    assert on_the_link < 12 * MiB + PART, f"{on_the_link / MiB:.1f} MiB went over the link for 12 MiB"
    # the estimate is the link (less TCP/IP and HTTP overhead, and the EWMA still settling), and the guard
    # lets only as many 5 MiB parts fly as finish in 80 s at their share of it (4 at 256 KiB/s)
    assert 0.6 * LINK_BPS < stats.throughput_bps < 1.2 * LINK_BPS, stats
    assert 1 <= stats.effective_concurrency <= 4, stats
    assert verify_object(s3.client(), s3.bucket, report.results[0].key, path).matches
