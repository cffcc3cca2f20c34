"""A Pi whose disk fills up while S3 is unreachable, then S3 comes back (docs/operations.md).

The agent's spool and state live on a small tmpfs (root only; skipped otherwise). With S3 cut off, recordings
pile up until the recorder gets ENOSPC. Expected: the agent keeps running, reports the low free space in its
telemetry and log, loses nothing; once S3 is reachable, every recording that was written is uploaded, verified
and deleted (retention ``delete``), which frees the disk, and the recorder can write again.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_protocol.messages import Event, Telemetry
from fleet_protocol.topics import AgentChannel, agent_filter
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.e2e.store import list_keys
from tests.e2e.system import PREFIX, System, wait_for
from tests.integration.edge_agent.service.helpers import Observer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
AGENT = "pi-disk-01"
DISK_MB = 24
MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr!r}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def record(spool: Path, n: int) -> Path | None:
    """One ~2.9 MB recording; None when the disk is full (what is written is removed, like a failed recorder)."""
    path = spool / f"rec-{n:03d}.wav"
    try:
        return write_wav(path, seconds=15, rate=48_000, channels=2, bits=16, seed=n)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        path.unlink(missing_ok=True)
        return None


def test_a_full_disk_loses_nothing_and_recovers_when_s3_is_back(small_disk: Path, tmp_path: Path) -> None:
    changes = {
        "spool_dir": str(small_disk / "spool"),
        "state_dir": str(small_disk / "state"),
        "retention": "delete",
        "min_free_bytes": 8 * MiB,
        "settle_seconds": 1,
        "scan_interval_s": 0.5,
        "telemetry_interval_s": 1,
    }
    system = System(tmp_path / "fleet", [AGENT], changes)
    try:
        system.start()
        proxy = system.proxies[AGENT]
        proxy.refuse(True)  # S3 unreachable from the agent
        observer = Observer(
            system.broker.url_for("observer"),
            [agent_filter(AgentChannel.TELEMETRY), agent_filter(AgentChannel.EVENTS)],
            "disk-obs",
        )
        spool = small_disk / "spool"
        spool.mkdir(exist_ok=True)
        written = []
        for n in range(100):
            path = record(spool, n)
            if path is None:
                break
            written.append(path.name)
        assert 3 <= len(written) < 100, "the disk never filled up"
        time.sleep(3)  # the agent sees a full disk for a while: it must keep running
        assert all(c.alive for c in system.supervisor.children), system.log_tails()
        low = list(map(Telemetry.model_validate_json, observer.payloads("/telemetry")))
        assert low, "no telemetry"
        assert low[-1].disk_free_bytes < 8 * MiB
        assert sorted(p.name for p in spool.iterdir()) == sorted(written)  # nothing lost, nothing deleted
        kinds = [Event.model_validate_json(p).kind for p in observer.payloads("/events")]
        assert kinds.count(EventKind.DISK_LOW) == 1, kinds  # one event for the one drop below the threshold

        proxy.refuse(False)  # S3 is back: everything uploads, is verified and deleted, the disk frees up
        s3 = system.s3.client()
        assert wait_for(lambda: not any(spool.iterdir()), timeout=120), system.log_tails()
        keys = list_keys(s3, system.s3.bucket, PREFIX)
        assert sorted(Path(k).stem for k in keys) == sorted(Path(n).stem for n in written)
        assert record(spool, 999) is not None  # the recorder can write again
        log = (system.paths.logs / f"{AGENT}.log").read_text()
        assert "below the threshold" in log
        observer.close()
    finally:
        system.close()
