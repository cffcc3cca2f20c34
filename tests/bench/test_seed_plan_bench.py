"""The seed's test plan as a benchmark (issue 6), marked ``bench``; results go to docs/bench/e2e.md.

    .venv/bin/pytest -m bench tests/bench/test_seed_plan_bench.py -s -p no:cacheprovider

The S3 server runs in a network namespace behind a veth pair with ``tc tbf`` on the upload direction
(root; addresses 10.231.78.0/30 only, inside our own namespace). Before = what a Pi does without edgefleet:
one raw WAV at a time, one single PUT each (``curl --aws-sigv4 -T``, streaming, ``--retry`` on interruptions).
After = ``edgefleet upload`` (streaming FLAC, multipart, 4 parts in flight, resume). Theoretical time =
bytes ÷ link rate. Scenarios: single files (100 MB, 500 MB, 2 GB by default), a batch of 20 files, the batch
with network interruptions (every connection cut every few seconds, at a TCP proxy), and the batch with the
settings the controller's policy gives a Pi in thermal throttling (measured with that assignment).

Environment: ``EDGEFLEET_BENCH_RATE_MBIT`` (100), ``EDGEFLEET_BENCH_SIZES_MB`` ("100,500,2000"),
``EDGEFLEET_BENCH_BATCH`` ("20x10": files x MB), ``EDGEFLEET_BENCH_DIR`` (/tmp/edgefleet-bench-e2e: cached WAVs
and e2e-results.jsonl).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgefleet.localservices import SeaweedS3
from tests.corpus import write_wav
from tests.faultproxy import FaultProxy
from tests.shapedlink import LinkPlan, s3_behind_shaped_link

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]
REPO = Path(__file__).resolve().parents[2]
BENCH = Path(os.environ.get("EDGEFLEET_BENCH_DIR", "/tmp/edgefleet-bench-e2e"))
RATE_MBIT = float(os.environ.get("EDGEFLEET_BENCH_RATE_MBIT", "100"))
SIZES_MB = [int(s) for s in os.environ.get("EDGEFLEET_BENCH_SIZES_MB", "100,500,2000").split(",") if s]
CONCURRENCY = os.environ.get("EDGEFLEET_BENCH_CONCURRENCY", "4")
BATCH_N, BATCH_MB = (int(x) for x in os.environ.get("EDGEFLEET_BENCH_BATCH", "20x10").split("x"))
NS, HOST_IF, NS_IF = "efe2ebench", "efe2e-h", "efe2e-n"
HOST_IP, NS_IP = "10.231.78.1", "10.231.78.2"
BYTES_PER_S_AUDIO = 48_000 * 2 * 2  # stereo 16-bit 48 kHz
MiB = 1024 * 1024


def link_bps() -> float:
    return RATE_MBIT * 1e6 / 8


def wav(name: str, megabytes: float, seed: int, kind: str = "field") -> Path:
    """A realistic WAV (tests/corpus.py mixes, not sines), generated once and cached in BENCH."""
    path = BENCH / f"{name}.wav"
    if not path.exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        seconds = megabytes * 1e6 / BYTES_PER_S_AUDIO
        write_wav(tmp, seconds=seconds, rate=48_000, channels=2, kind=kind, seed=seed)  # type: ignore[arg-type]
        tmp.rename(path)
    return path


def batch() -> list[Path]:
    kinds = ["field", "voice", "music", "field"]
    return [wav(f"batch-{BATCH_MB}mb-{i:02d}", BATCH_MB, seed=500 + i, kind=kinds[i % 4]) for i in range(BATCH_N)]


@dataclass
class Row:
    scenario: str
    method: str
    files: int
    wav_bytes: int
    sent_bytes: int  # object bytes stored (raw = wav bytes; ours = FLAC)
    seconds: float
    ok: bool
    retries: int = 0  # "; retry " lines in edgefleet upload's -vv log: every request retried (errors, stalls)

    @property
    def theoretical_s(self) -> float:
        return self.wav_bytes / link_bps()

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "theoretical_raw_s": self.theoretical_s, "rate_mbit": RATE_MBIT}


ROWS: list[Row] = []


def record(row: Row) -> None:
    ROWS.append(row)
    BENCH.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), **row.as_dict()})
    with open(BENCH / "e2e-results.jsonl", "a") as f:
        f.write(line + "\n")
    print(line, flush=True)


@pytest.fixture(scope="module")
def shaped_s3() -> Iterator[SeaweedS3]:
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("curl"):
        pytest.skip("needs root, tc and curl")
    plan = LinkPlan(NS, HOST_IF, NS_IF, HOST_IP, NS_IP, RATE_MBIT, burst=f"{max(32, int(RATE_MBIT * 4))}kb")
    try:
        with s3_behind_shaped_link(plan, "efe2e-bench-s3-") as s3:
            yield s3
    finally:
        print_table()


def print_table() -> None:
    print("\n| scenario | method | files | WAV MB | sent MB | measured s | bytes÷link s | measured/theory | retries "
          "| ok |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in ROWS:
        print(
            f"| {r.scenario} | {r.method} | {r.files} | {r.wav_bytes / 1e6:.0f} | {r.sent_bytes / 1e6:.0f} | "
            f"{r.seconds:.1f} | {r.theoretical_s:.1f} | {r.seconds / r.theoretical_s:.2f} | {r.retries} | {r.ok} |"
        )


def env_for(s3: SeaweedS3) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return {**env, **s3.env()}


def curl_put(s3: SeaweedS3, endpoint: str, path: Path, key: str, timeout: float | None = None) -> bool:
    """One raw single PUT, streamed from disk; interrupted transfers start over (``--retry``)."""
    cmd = [
        "curl", "-sS", "-f", "-o", "/dev/null", "--retry", "20", "--retry-all-errors", "--retry-delay", "1",
        "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{s3.access_key}:{s3.secret_key}",
        "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", str(path), f"{endpoint}/{s3.bucket}/{key}",
    ]  # fmt: skip
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def before(
    s3: SeaweedS3, files: list[Path], prefix: str, endpoint: str | None = None, give_up_s: float = 0.0
) -> tuple[float, int]:
    """Every file, one after the other; a file whose PUT failed even after curl's retries is tried again from the
    start, up to 5 times (what a careful shell script would do). With ``give_up_s`` the run is stopped after that
    long. Returns (seconds, files stored)."""
    start = time.perf_counter()
    stored = 0
    for f in files:
        for _ in range(5):
            left = give_up_s - (time.perf_counter() - start) if give_up_s else None
            if left is not None and left <= 0:
                return time.perf_counter() - start, stored
            if curl_put(s3, endpoint or s3.endpoint, f, f"{prefix}/{f.name}", left):
                stored += 1
                break
    return time.perf_counter() - start, stored


def after(
    s3: SeaweedS3, files: list[Path], prefix: str, tmp: Path, endpoint: str | None = None, *extra: str
) -> tuple[float, bool, int, int]:
    env = env_for(s3)
    if endpoint:
        env["EDGEFLEET_S3_ENDPOINT"] = endpoint
    cmd = [
        sys.executable, "-m", "edgefleet.cli", "-vv", "upload", *map(str, files), "--prefix", prefix,
        "--agent-id", "bench",
        "--state-dir", str(tmp / f"state-{prefix.replace('/', '-')}"), "--concurrency", CONCURRENCY,
        "--part-size", str(8 * MiB), "--stall-timeout", "60", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    client = s3.client()
    stored = sum(o.size or 0 for o in client.list_objects(s3.bucket, prefix=f"{prefix}/", recursive=True))
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:])
    return seconds, done.returncode == 0, stored, done.stderr.count("; retry ")


def run_pair(
    s3: SeaweedS3, scenario: str, files: list[Path], tmp: Path, proxy_endpoint: str | None = None, give_up_s: float = 0
) -> None:
    wav_bytes = sum(f.stat().st_size for f in files)
    tag = f"{scenario.replace(' ', '-')}-{time.time_ns()}"
    seconds, stored = before(s3, files, f"before/{tag}", proxy_endpoint, give_up_s)
    method = "before: raw, single PUT, one at a time"
    if stored < len(files):
        method += f" (stopped after {seconds:.0f} s: {stored} of {len(files)} files stored)"
    stored_bytes = sum(f.stat().st_size for f in files[:stored])
    record(Row(scenario, method, len(files), wav_bytes, stored_bytes, seconds, stored == len(files)))
    seconds, ok, stored, retries = after(s3, files, f"after/{tag}", tmp, proxy_endpoint)
    method = f"after: edgefleet upload, concurrency {CONCURRENCY}"
    record(Row(scenario, method, len(files), wav_bytes, stored, seconds, ok, retries))


@pytest.mark.parametrize("size_mb", SIZES_MB)
def test_single_file(shaped_s3: SeaweedS3, tmp_path: Path, size_mb: int) -> None:
    run_pair(shaped_s3, f"one {size_mb} MB file", [wav(f"single-{size_mb}mb", size_mb, seed=size_mb)], tmp_path)
    assert all(r.ok for r in ROWS[-2:])


def test_batch(shaped_s3: SeaweedS3, tmp_path: Path) -> None:
    run_pair(shaped_s3, f"batch {BATCH_N} x {BATCH_MB} MB", batch(), tmp_path)
    assert all(r.ok for r in ROWS[-2:])


def test_batch_with_interruptions(shaped_s3: SeaweedS3, tmp_path: Path) -> None:
    """Every open connection is cut every 4 s (TCP RST at a proxy in front of the link)."""
    with FaultProxy(shaped_s3.host, shaped_s3.port, listen_host=HOST_IP) as proxy:
        stop = threading.Event()

        def cutter() -> None:
            while not stop.wait(4.0):
                proxy.cut_all()

        thread = threading.Thread(target=cutter, daemon=True)
        thread.start()
        try:
            files = batch()
            give_up = 4 * sum(f.stat().st_size for f in files) / link_bps()  # 4 x the raw theoretical time
            scenario = f"batch {BATCH_N} x {BATCH_MB} MB, cut every 4 s"
            run_pair(shaped_s3, scenario, files, tmp_path, f"http://{proxy.address}", give_up)
        finally:
            stop.set()
            thread.join()
        print(f"connections cut: {proxy.cuts}")
    assert ROWS[-1].ok


def throttled_limits() -> tuple[int, int, str]:
    """What the controller's policy assigns a 4-core Pi at 78 °C (soft limit 70, hard 80): concurrency, level."""
    from controller.policy import PolicyConfig, assign
    from controller.policy.inputs import AgentView, FleetView, TelemetryView

    now = datetime.now(UTC)
    agent = AgentView(
        "hot-pi",
        site="s",
        cores=4,
        ram_bytes=4 << 30,
        telemetry=TelemetryView(at=now, temperature_c=78.0, backlog_files=20, backlog_bytes=200_000_000),
    )
    decision = assign(FleetView(agents=(agent,)), PolicyConfig(site_uplink_bps=0), now)["hot-pi"]
    return decision.settings.concurrency, decision.settings.compression_level, decision.reason


def test_batch_thermal_throttling(shaped_s3: SeaweedS3, tmp_path: Path) -> None:
    concurrency, level, reason = throttled_limits()
    files = batch()
    wav_bytes = sum(f.stat().st_size for f in files)
    tag = f"thermal-{time.time_ns()}"
    extra = ("--concurrency", str(concurrency), "--compression-level", str(level))
    seconds, ok, stored, retries = after(shaped_s3, files, f"after/{tag}", tmp_path, None, *extra)
    print(f"policy for a Pi at 78 °C: {reason}")
    record(
        Row(
            f"batch {BATCH_N} x {BATCH_MB} MB, Pi at 78 °C",
            f"after: concurrency {concurrency}, level {level}",
            len(files),
            wav_bytes,
            stored,
            seconds,
            ok,
            retries,
        )
    )
    assert ok
