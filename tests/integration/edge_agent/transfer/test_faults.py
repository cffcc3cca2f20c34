"""Faults between the engine and S3 (through tests/faultproxy.py), a dead and a restarted S3 server,
a file changed during its upload, and ``kill -9`` of ``edgefleet upload`` followed by a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits, MiB
from edge_agent.transfer import Engine
from edge_agent.transfer.context import RetryNotice
from edge_agent.transfer.s3 import S3Store
from edgefleet.localservices import SeaweedS3
from fleet_audio.restore import verify_object
from tests.faultproxy import FaultProxy
from tests.integration.edge_agent.transfer.helpers import PART, Recorder, settings_via

pytestmark = pytest.mark.integration
Make = Callable[..., tuple[Engine, Recorder]]
REPO = Path(__file__).resolve().parents[4]


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def in_background(fn: Callable[[], object]) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_cut_in_the_middle_of_a_part(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    engine, _ = make_engine(settings_via(s3_server, proxy))
    engine.enqueue(wavs["mid"])
    proxy.cut_after(7 * MiB)  # inside the second part on the wire
    report = engine.run_until_idle()
    assert report.ok, report
    assert proxy.cuts == 1
    assert engine.stats().retries_total >= 1
    r = report.results[0]
    # only the parts that were on the wire at the cut are sent again (from memory, no re-encode)
    assert proxy.bytes_up - r.stored_bytes <= 2 * PART
    assert verify_object(s3_server.client(), s3_server.bucket, r.key, wavs["mid"]).matches


def test_stall_times_out_and_retries(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    """A proxy that stops passing anything on (its TCP stack still answers, with a closed window) once the link
    is measured: the part is cut by the stall timer (counted from when the link could have passed on what was
    written, :mod:`edge_agent.engine.linkguard`) and sent again. Before the link is measured the rule allows the
    unmeasured 64 kbit/s for that, which would make this test wait for hours: a first file measures it."""
    engine, _ = make_engine(settings_via(s3_server, proxy), stall_timeout_s=1.5)
    proxy.set_rate(1 * MiB)  # the first file takes seconds: a measured link
    engine.enqueue(wavs["small24"])
    assert engine.run_until_idle().ok
    assert engine.stats().throughput_bps > 0
    proxy.set_rate(0)
    notices: list[RetryNotice] = []
    engine.set_retry_callback(notices.append)
    engine.enqueue(wavs["mid"])
    start_bytes = proxy.bytes_up

    def stall_once() -> None:
        wait_for(lambda: proxy.bytes_up - start_bytes > 2 * MiB, 60, "upload to start")
        proxy.stall()
        wait_for(lambda: bool(notices), 60, "the stall to be cut")  # a ceiling: it comes within seconds
        proxy.resume()

    t = in_background(stall_once)
    started = time.monotonic()
    report = engine.run_until_idle()
    t.join()
    assert report.ok, report
    assert time.monotonic() - started >= 1.5
    assert engine.stats().retries_total >= 1
    # which guard cuts it depends on where the proxy froze: a stall while a part is being written is the wire's
    # stall timer; once every byte of the part was written and acknowledged by the proxy's kernel, the wait for
    # the answer is bounded by the part's deadline from the measured link (the stall timer does not run then: a
    # buffering middlebox may legitimately hold the whole part); a read after that is the socket's timeout
    errors = [n.error.lower() for n in notices if n.error]
    cut = ("stalled: nothing written or acknowledged for 1.5 s", "no answer for", "timed out")
    assert any(any(reason in e for reason in cut) for e in errors), errors


def test_slow_link_and_token_bucket(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    rate = 4 * MiB
    engine, _ = make_engine(settings_via(s3_server, proxy), Limits(concurrency=2, part_size=PART, bandwidth_bps=rate))
    proxy.set_rate(3 * MiB)  # per connection: the engine's cap is the tighter limit for two connections
    engine.enqueue(wavs["mid"])
    started = time.monotonic()
    report = engine.run_until_idle()
    took = time.monotonic() - started
    assert report.ok, report
    stored = report.results[0].stored_bytes
    # one token bucket: never faster than the cap (allowing its burst of two pacing chunks)
    assert took >= (stored - rate) / rate
    assert engine.stats().bytes_uploaded_total == stored


def test_dead_server_retries_until_it_is_back(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Background mode (the agent service): S3 unreachable -> keep retrying with backoff, lose nothing."""
    engine, rec = make_engine(settings_via(s3_server, proxy))
    proxy.refuse(True)
    engine.enqueue(wavs["small24"])
    engine.start()
    wait_for(lambda: engine.stats().retries_total >= 3, 60, "retries against the dead server")
    assert "S3 unreachable" in caplog.text
    assert engine.stats().backlog_files == 1
    proxy.refuse(False)
    wait_for(lambda: "upload_completed" in rec.kinds(), 60, "the upload to complete")
    engine.stop()
    assert engine.stats().backlog_files == 0
    assert wavs["small24"].exists()


def test_s3_server_restart_mid_upload(
    s3_server_factory: Callable[..., SeaweedS3], make_engine: Make, wavs: dict[str, Path]
) -> None:
    server = s3_server_factory()
    with FaultProxy(server.host, server.port) as proxy:
        proxy.set_rate(2 * MiB)
        engine, _ = make_engine(settings_via(server, proxy))
        engine.enqueue(wavs["mid"])

        def restart() -> None:
            wait_for(lambda: proxy.bytes_up > 3 * MiB, 60, "upload")
            server.restart(1.0)

        t = in_background(restart)
        report = engine.run_until_idle()
        t.join()
    assert report.ok, report
    assert engine.stats().retries_total >= 1
    assert verify_object(server.client(), server.bucket, report.results[0].key, wavs["mid"]).matches


def test_file_changed_during_upload_aborts_cleanly(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path], tmp_path: Path
) -> None:
    f = tmp_path / "growing.wav"
    f.write_bytes(wavs["big"].read_bytes())
    proxy.set_rate(2 * MiB)
    engine, rec = make_engine(settings_via(s3_server, proxy))
    engine.enqueue(f)

    def touch() -> None:
        wait_for(lambda: proxy.bytes_up > MiB, 60, "upload")
        os.utime(f, ns=(0, time.time_ns()))

    t = in_background(touch)
    report = engine.run_until_idle()
    t.join()
    assert not report.ok
    assert "changed" in report.results[0].reason
    assert rec.kinds(f) == ["upload_started", "upload_failed"]
    assert S3Store(settings_via(s3_server)).pending_uploads(engine.config.prefix + "/") == []  # aborted
    assert f.exists()
    proxy.set_rate(0)
    engine.enqueue(f, recheck=True)
    assert engine.run_until_idle().ok  # tried again later: fine


# -- kill -9 of the command, then run it again ------------------------------------------------------------
def upload_cmd(state: Path, files: list[Path], concurrency: int, prefix: str) -> list[str]:
    return [
        sys.executable, "-m", "edgefleet.cli", "upload", *map(str, files), "--prefix", prefix, "--agent-id", "pi-9",
        "--state-dir", str(state), "--concurrency", str(concurrency), "--part-size", str(PART),
        "--stall-timeout", "10",
    ]  # fmt: skip


@pytest.mark.parametrize("kill_at_mib", [3, 12, 21])
def test_kill_9_then_resume(
    s3_server: SeaweedS3, proxy: FaultProxy, wavs: dict[str, Path], tmp_path: Path, kill_at_mib: int
) -> None:
    concurrency = 2
    env = {**os.environ, **s3_server.env(), "EDGEFLEET_S3_ENDPOINT": f"http://{proxy.address}"}
    cmd = upload_cmd(tmp_path / "state", [wavs["big"]], concurrency, f"kill/{tmp_path.name}")
    proxy.set_rate(6 * MiB)  # per connection, so the kill lands where we want it
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: proxy.bytes_up >= kill_at_mib * MiB or proc.poll() is not None, 60, "bytes to flow")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    proxy.set_rate(0)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("stored"))
    key = line.split(" -> ")[1].split()[0]
    stored = s3_server.client().stat_object(s3_server.bucket, key).size or 0
    resent = proxy.bytes_up - stored
    # The proxy counts whole requests: besides payload, the request lines and headers (SigV4, ~1 KiB each) of
    # the two runs' ~40 requests. The bound is on payload: at most the parts that were on the wire.
    http_overhead = 64 * 1024
    assert resent <= concurrency * PART + http_overhead, (
        f"re-sent {resent / MiB:.2f} MiB after kill -9 at {kill_at_mib} MiB"
    )
    assert verify_object(s3_server.client(), s3_server.bucket, key, wavs["big"]).matches
