"""The end-to-end proof: two transcoder processes on PostgreSQL, one killed with SIGKILL in the middle of a job
(held there by the test hook, no sleeps); the other takes the job over once the lease expires, aborts the dead
worker's multipart upload, and every raw object ends up as an object that restores bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.store.database import make_engine
from controller.store.schema import migrate
from controller.transcoder.s3io import object_exists
from controller.transcoder.work import HOLD_ENV
from edgefleet.localservices import Postgres, SeaweedS3
from tests.corpus import write_wav
from tests.integration.controller.transcoder.conftest import StageRaw
from tests.integration.controller.transcoder.helpers import (
    config,
    digest,
    jobs,
    pending_uploads,
    restore_digest,
    toml,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def _start(cfg_text: str, folder: Path, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    path = folder / f"{name}.toml"
    path.write_text(cfg_text)
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it
    cmd = [sys.executable, "-m", "edgefleet.cli", "-v", "transcoder", "--config", str(path)]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})


def test_kill_9_mid_job_loses_nothing_and_leaves_no_orphan(
    postgres: Postgres,
    s3_server: SeaweedS3,
    tmp_path: Path,
    workers: list[subprocess.Popen[bytes]],
    stage_raw: StageRaw,
) -> None:
    url = postgres.create_database()
    engine = make_engine(url)
    migrate(engine)
    # the first job is big enough for three 5 MiB parts: the victim is held after its first part
    files = [write_wav(tmp_path / "long.wav", 70.0, 48000, 2, kind="field", seed=7)]
    files += [write_wav(tmp_path / f"short-{i}.wav", 1.0, 44100, 2, kind="music", seed=i) for i in range(3)]
    files.append(write_wav(tmp_path / "bats.f32.wav", 2.0, 48000, 1, float32=True, seed=9))
    staged = stage_raw(engine, {path.name: path for path in files})
    client, bucket, prefix, keys = staged.client, staged.bucket, staged.prefix, list(staged.keys.values())
    hold = tmp_path / "hold"
    hold.mkdir()
    victim = _start(toml(config(url, s3_server, worker_id="victim")), tmp_path, "victim", {HOLD_ENV: str(hold)})
    workers.append(victim)
    wait_for(lambda: (hold / "victim.holding").exists(), 120, "the victim to send its first part and hold")
    held = next(job for job in jobs(engine) if job.lease_owner == "victim")
    assert (held.key, held.state) == (keys[0], "running")
    assert held.upload_id in pending_uploads(client, bucket, prefix)
    workers.append(_start(toml(config(url, s3_server, worker_id="survivor")), tmp_path, "survivor", {}))
    wait_for(lambda: any(job.lease_owner == "survivor" for job in jobs(engine)), 120, "the survivor to work")
    victim.send_signal(signal.SIGKILL)
    victim.wait(60)

    def settled() -> bool:
        return all(job.state == "done" for job in jobs(engine))

    wait_for(settled, 240, lambda: f"every job done: {[(j.key, j.state, j.error) for j in jobs(engine)]}")
    final = {job.key: job for job in jobs(engine)}
    assert final[keys[0]].attempts == 2  # the victim's attempt and the survivor's
    assert pending_uploads(client, bucket, prefix) == []  # the victim's half upload was aborted
    for key, path in zip(keys, files, strict=True):
        job = final[key]
        assert not object_exists(client, bucket, key)
        rebuilt = restore_digest(client, bucket, job.target_key)
        assert (rebuilt.size, rebuilt.sha256) == digest(path)
