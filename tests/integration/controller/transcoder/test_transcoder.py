"""The transcoder against the real SeaweedFS and real databases (SQLite and PostgreSQL): raw objects become FLAC
or zstd objects that restore bit for bit, the raw ones are deleted only after that, claims never collide."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controller.store.database import make_engine
from controller.store.models import Recording, TranscodeJob
from controller.store.schema import migrate
from controller.transcoder import jobs as queue
from controller.transcoder.metrics import TranscoderMetrics
from controller.transcoder.s3io import object_exists
from controller.transcoder.work import Worker
from edgefleet.localservices import SeaweedS3
from tests.corpus import write_wav
from tests.integration.controller.transcoder.conftest import StageRaw
from tests.integration.controller.transcoder.helpers import (
    config,
    digest,
    jobs,
    pending_uploads,
    restore_digest,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    migrate(engine)
    return engine


def _files(folder: Path) -> dict[str, Path]:
    noise = folder / "noise.bin"
    noise.write_bytes(secrets.token_bytes(200_000))
    return {
        "pcm16": write_wav(folder / "dawn.wav", 2.0, 22050, 2, kind="field", seed=1),
        "pcm24": write_wav(folder / "dusk.wav", 1.0, 48000, 1, bits=24, kind="voice", seed=2),
        "float": write_wav(folder / "bat.f32.wav", 1.0, 48000, 2, float32=True, seed=3),
        "noise": noise,
    }


def test_raw_objects_become_flac_or_zstd_verified_and_the_raw_ones_go(
    engine: Engine, database_url: str, s3_server: SeaweedS3, tmp_path: Path, stage_raw: StageRaw
) -> None:
    files = _files(tmp_path)
    staged = stage_raw(engine, files)
    client, bucket, prefix, keys = staged.client, staged.bucket, staged.prefix, staged.keys
    with Session(engine) as session:  # the catalog has a row for one of them
        session.add(Recording(key=keys["pcm16"], agent_id="pi-hot", uploaded_at=datetime.now(UTC), codec="raw"))
        session.commit()
    metrics = TranscoderMetrics()
    worker = Worker(config(database_url, s3_server, worker_id="w1"), engine, client, metrics)
    worker.poll()
    while worker.run_once():
        pass
    by_key = {job.key: job for job in jobs(engine)}
    assert {name: by_key[key].state for name, key in keys.items()} == {
        "pcm16": "done",
        "pcm24": "done",
        "float": "done",
        "noise": "skipped",  # zstd cannot save 5 % of random bytes: it stays raw
    }
    assert {name: by_key[keys[name]].codec for name in ("pcm16", "pcm24", "float")} == {
        "pcm16": "flac",
        "pcm24": "flac",
        "float": "zstd",
    }
    assert by_key[keys["pcm16"]].target_key == keys["pcm16"].removesuffix(".wav") + ".flac"
    assert by_key[keys["float"]].target_key == keys["float"] + ".zst"
    for name in ("pcm16", "pcm24", "float"):
        job = by_key[keys[name]]
        assert not object_exists(client, bucket, job.key)
        rebuilt = restore_digest(client, bucket, job.target_key)
        assert (rebuilt.size, rebuilt.sha256) == digest(files[name])
        assert job.stored_bytes < job.original_bytes
    assert object_exists(client, bucket, keys["noise"])
    assert pending_uploads(client, bucket, prefix) == []
    with Session(engine) as session:
        row = session.exec(select(Recording)).one()
    assert (row.key, row.codec) == (by_key[keys["pcm16"]].target_key, "flac")
    assert metrics.jobs.labels("done")._value.get() == 3
    worker.poll()  # the same events again: no new jobs
    assert len(jobs(engine)) == 4


def _add_jobs(engine: Engine, count: int) -> None:
    with Session(engine) as session:
        for i in range(count):
            session.add(TranscodeJob(key=f"k/{i}", created_at=datetime.now(UTC)))
        session.commit()


def test_concurrent_claims_never_give_one_job_to_two_workers(engine: Engine) -> None:
    _add_jobs(engine, 40)
    taken: dict[str, list[int]] = {f"w{i}": [] for i in range(6)}
    start = threading.Barrier(len(taken))

    def work(name: str) -> None:
        start.wait()
        with Session(engine) as session:
            while True:
                job = queue.claim(session, name, datetime.now(UTC), 600)
                if job is None and queue.queue_depth(session) == sum(len(v) for v in taken.values()):
                    return
                if job is not None:
                    taken[name].append(job.id or 0)

    threads = [threading.Thread(target=work, args=(name,)) for name in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    claimed = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(claimed) == sorted({job.id or 0 for job in jobs(engine)})  # each exactly once


def test_an_expired_lease_is_taken_over_and_the_old_owner_can_write_nothing(engine: Engine) -> None:
    _add_jobs(engine, 1)
    t0 = datetime.now(UTC)
    with Session(engine) as session:
        first = queue.claim(session, "a", t0, 10)
        assert first is not None
        assert first.id is not None
        assert queue.claim(session, "b", t0 + timedelta(seconds=5), 10) is None  # still a's
        second = queue.claim(session, "b", t0 + timedelta(seconds=11), 10)
        assert second is not None
        assert (second.id, second.lease_owner, second.attempts) == (first.id, "b", 2)
        assert not queue.update_owned(session, first.id, "a", state="done")
        assert not queue.renew(session, first.id, "a", t0, 10)
        assert queue.renew(session, first.id, "b", t0 + timedelta(seconds=12), 10)
