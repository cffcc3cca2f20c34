"""Limits changed while running (agent service mode) and the ``edgefleet upload`` command's contract."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits
from edge_agent.transfer import Engine
from edgefleet.localservices import SeaweedS3
from tests.faultproxy import FaultProxy
from tests.integration.edge_agent.transfer.helpers import PART, Recorder, run_upload_cli, settings_via

pytestmark = pytest.mark.integration
Make = Callable[..., tuple[Engine, Recorder]]
REPO = Path(__file__).resolve().parents[4]


def closed_window_now() -> str:
    """A one-minute window that starts two hours from now (local time): closed now."""
    start = time.localtime(time.time() + 2 * 3600)
    end = time.localtime(time.time() + 2 * 3600 + 60)  # 02:59 ends at 03:00, not 02:00 (which would wrap a day)
    return f"{start.tm_hour:02d}:{start.tm_min:02d}-{end.tm_hour:02d}:{end.tm_min:02d}"


@pytest.mark.parametrize(
    "closed", [Limits(paused=True), Limits(concurrency=0), Limits(windows=(closed_window_now(),))], ids=str
)
def test_no_part_starts_until_limits_allow(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path], closed: Limits
) -> None:
    engine, rec = make_engine(settings_via(s3_server, proxy), closed)
    engine.enqueue(wavs["small24"])
    engine.start()
    time.sleep(1.5)
    assert proxy.bytes_up < 10_000  # at most small requests (HEAD / create), never a part
    assert "upload_completed" not in rec.kinds()
    engine.set_limits(Limits(concurrency=2, part_size=PART))  # takes effect without a restart
    deadline = time.monotonic() + 60
    while "upload_completed" not in rec.kinds() and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.stop()
    assert "upload_completed" in rec.kinds()
    assert engine.stats().backlog_files == 0


def test_cli_contract(s3_server: SeaweedS3, wavs: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, **s3_server.env()}
    common = ["--prefix", f"cli/{tmp_path.name}", "--agent-id", "pi-c", "--state-dir", str(tmp_path / "s")]
    ok = run_upload_cli([str(wavs["small24"]), str(wavs["float"]), *common], env)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"stored  {wavs['small24']} -> cli/{tmp_path.name}/pi-c/")
    # the cost model's level (no --compression-level): the smaller float file goes first and measures the loopback
    # "link", on which the senders are the CPU's pace, so small24 may rightly go raw
    assert lines[0].split(" -> ")[1].split()[0].endswith(("/small24.flac", "/small24.wav"))
    assert "/float.wav.zst" in lines[1]  # FLAC cannot hold float: zstd, which saves more than 5 % here
    assert "zstd, not FLAC: 32-bit float PCM" in lines[1]
    missing = tmp_path / "missing.wav"
    bad = run_upload_cli([str(wavs["small24"]), str(missing), *common], env)
    assert bad.returncode == 1
    assert f"FAILED  {missing}" in bad.stdout
    assert "already stored" in bad.stdout
    usage = run_upload_cli([str(wavs["small24"]), "--concurrency", "0", *common], env)
    assert usage.returncode == 2
    no_s3 = run_upload_cli([str(wavs["small24"]), *common], {k: v for k, v in env.items() if "EDGEFLEET_S3" not in k})
    assert no_s3.returncode == 2
    assert "S3 endpoint is not set" in no_s3.stderr
