"""The thin link of issue 10 (marked ``bench``; root): 64 kbit/s and 600 ms of added delay, a 30 MB WAV.

    .venv/bin/python -m pytest -m bench tests/bench/test_thin_link_bench.py -s

Two identical links (``tc tbf`` on a veth pair, SeaweedFS in its own network namespace behind each), each with
tests/faultproxy.py in front adding the delay to the uplink (the kernel here has no netem). ``edgefleet upload``
(no ``--compression-level``, every default) and ``rclone copy`` (raw, its defaults) run at the same time, one
on each link, so both see the same machine load and the run takes as long as the slower of the two. Target:
edgefleet completes with at most one part re-sent (the engine's retry log lines, ``-vv``).

The delay sits in a user-space proxy before the link: requests and responses wait 600 ms more, but TCP on the
shaped hop itself sees no extra round-trip time (netem would also stretch TCP's own round trips).

The proxy holds at most ``EDGEFLEET_BENCH_THIN_BUFFER`` bytes (16384) per connection in its delay line and
socket buffers, as a path with that delay would (one connection: ≤ 27 kB/s, above the link); with 0 it keeps
the kernel's buffers (MBs) and takes a part off the uploader long before the link has carried it, as a
splitting proxy (a satellite PEP) does.

Environment: ``EDGEFLEET_BENCH_THIN_MB`` (30), ``EDGEFLEET_BENCH_THIN_KBIT`` (64), ``EDGEFLEET_BENCH_THIN_DELAY_MS``
(600), ``EDGEFLEET_BENCH_THIN_BUFFER`` (16384), ``EDGEFLEET_BENCH_THIN_SUBNET`` (20: the two links' /30s are this and
the next, so two variants can run side by side with different values), ``EDGEFLEET_BENCH_DIR``
(/tmp/edgefleet-bench-plan).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgefleet.localservices import SeaweedS3
from tests.bench.lab import ADAPTIVE, RCLONE, Run, Uploader, env_mb, link_plan, machine, record, upload, wav
from tests.faultproxy import FaultProxy
from tests.shapedlink import LinkPlan, s3_behind_shaped_link

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3 * 3600)]
SIZE_MB = env_mb("EDGEFLEET_BENCH_THIN_MB", 30)
KBIT = env_mb("EDGEFLEET_BENCH_THIN_KBIT", 64)
DELAY_S = env_mb("EDGEFLEET_BENCH_THIN_DELAY_MS", 600) / 1000
BUFFER = int(env_mb("EDGEFLEET_BENCH_THIN_BUFFER", 16 * 1024))  # the proxy's buffers; 0 = a splitting proxy
SUBNET = int(env_mb("EDGEFLEET_BENCH_THIN_SUBNET", 20))  # the first leg's /30, the second's the next
Leg = tuple[SeaweedS3, LinkPlan, FaultProxy]


@contextlib.contextmanager
def leg(tag: str, subnet: int) -> Iterator[Leg]:
    plan = link_plan(tag, subnet, KBIT / 1000)
    with s3_behind_shaped_link(plan, f"{tag}-s3-") as s3, FaultProxy(s3.host, s3.port) as proxy:
        proxy.set_delay(DELAY_S, buffer=BUFFER)
        yield s3, plan, proxy


@pytest.fixture(scope="module")
def legs() -> Iterator[tuple[Leg, Leg]]:
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("rclone"):
        pytest.skip("needs root, tc and rclone")
    with leg("efthinA", SUBNET) as a, leg("efthinB", SUBNET + 1) as b:
        yield a, b


def first_byte_s(host: str, port: int) -> float:
    """Seconds from sending a small HTTP request to the first byte of the answer."""
    with socket.create_connection((host, port), timeout=30) as sock:
        start = time.perf_counter()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: s3\r\nConnection: close\r\n\r\n")
        sock.recv(1)
        return time.perf_counter() - start


def test_thin_link(legs: tuple[Leg, Leg], tmp_path: Path) -> None:
    f = wav(f"thin-{SIZE_MB:g}mb", SIZE_MB, seed=64, kind="field")
    (s3a, plan_a, proxy_a), (s3b, plan_b, proxy_b) = legs
    added = first_byte_s(proxy_a.host, proxy_a.port) - first_byte_s(s3a.host, s3a.port)
    assert added >= DELAY_S * 0.95, f"the proxy adds {added:.3f} s, not {DELAY_S} s"
    ceiling = 3 * f.stat().st_size * 8 / (KBIT * 1000)  # 3 x raw over the link: a stuck run, never a slow one

    def run(who: Uploader, s3: SeaweedS3, plan: LinkPlan, proxy: FaultProxy) -> Run:
        work = tmp_path / who.name
        work.mkdir()
        return upload(who, [f], s3, work, plan=plan, endpoint=f"http://{proxy.address}", ceiling_s=ceiling)

    with ThreadPoolExecutor(2) as pool:
        ours = pool.submit(run, ADAPTIVE, s3a, plan_a, proxy_a)
        theirs = pool.submit(run, RCLONE, s3b, plan_b, proxy_b)
        edgefleet, rclone = ours.result(), theirs.result()
    record("thin_link", kbit=KBIT, delay_s=DELAY_S, wav_mb=SIZE_MB, proxy_buffer=BUFFER,
           measured_added_delay_s=round(added, 3), runs=[edgefleet, rclone],
           proxy_up_bytes=[proxy_a.bytes_up, proxy_b.bytes_up],
           ceiling_s=round(ceiling), machine=machine())  # fmt: skip
    assert edgefleet.ok, edgefleet.tail
    assert edgefleet.parts_resent <= 1, edgefleet.tail
    assert edgefleet.part_retries <= 1, edgefleet.tail
