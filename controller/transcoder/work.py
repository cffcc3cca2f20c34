"""One transcoder worker: claim a job, stream the raw object through the encoder into a multipart upload, verify
the new object by a streaming restore, and only then delete the raw object (docs/transcoder.md, "A job").

Crash safety: the job row records the multipart upload before its first part is sent, so a worker taking over an
expired lease aborts it; the new object is marked verified before the raw one is deleted, so a crash between the
two leaves a job that only deletes. Every write to the row requires the lease (``jobs.update_owned``).
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from minio import Minio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller.store.models import TranscodeJob
from controller.transcoder import jobs
from controller.transcoder.config import TranscoderConfig
from controller.transcoder.metrics import TranscoderMetrics
from controller.transcoder.parts import split
from controller.transcoder.s3io import Multipart, ObjectReader, abort_upload, object_exists, remove
from fleet_audio.errors import RecordingRejected
from fleet_audio.objectkey import object_key_for
from fleet_audio.restore import rebuild_object
from fleet_audio.source import META_FORMAT, META_NAME, META_SHA256, META_SIZE, RAW_FORMAT, Kind, open_reader

log = logging.getLogger(__name__)

#: tests: a folder; after its first part a worker writes ``<worker>.holding`` there and waits for ``release``
HOLD_ENV = "EDGEFLEET_TRANSCODER_TEST_HOLD"


class LeaseLost(Exception):
    """Another worker holds the job now (or the service is stopping): stop without touching anything."""


@dataclass(frozen=True)
class Finish:
    state: str
    error: str = ""


def now() -> datetime:
    return datetime.now(UTC)


def target_key(raw_key: str, metadata: dict[str, str], kind: Kind) -> str:
    """The key the agent would have given the file stored as ``kind``: same folder, name from the metadata."""
    directory, base = posixpath.split(raw_key)
    name = unquote_to_bytes(metadata[META_NAME]) if metadata.get(META_NAME) else base.encode()
    return object_key_for(directory, name, kind)


class LeaseKeeper:
    """Renews the lease every third of it from its own thread; ``lost`` is set once a renewal finds it gone."""

    def __init__(self, engine: Engine, job_id: int, owner: str, lease_s: float) -> None:
        self.lost = threading.Event()
        self._done = threading.Event()
        self._args = (engine, job_id, owner, lease_s)
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def _run(self) -> None:
        engine, job_id, owner, lease_s = self._args
        while not self._done.wait(lease_s / 3):
            try:
                with Session(engine) as session:
                    if not jobs.renew(session, job_id, owner, now(), lease_s):
                        self.lost.set()
                        return
            except Exception:  # a database hiccup: try again next round; the lease has two more thirds
                log.exception("cannot renew the lease of transcode job %d", job_id)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()


class Worker:
    def __init__(self, config: TranscoderConfig, engine: Engine, client: Minio, metrics: TranscoderMetrics) -> None:
        self.config, self.engine, self.client, self.metrics = config, engine, client, metrics
        self.bucket = config.s3.bucket
        self.name = config.worker_name()
        self.stop = threading.Event()
        self.jobs_done = 0
        hold = os.environ.get(HOLD_ENV)
        self._hold = Path(hold) if hold else None

    # -- the loop -------------------------------------------------------------------------------------------
    def poll(self) -> None:
        """Heartbeat, queue new raw uploads, refresh the gauges."""
        with Session(self.engine) as session:
            jobs.heartbeat(session, self.name, now(), self.jobs_done)
            jobs.enqueue_raw_uploads(session, now())
            self.metrics.queue_depth.set(jobs.queue_depth(session))
            self.metrics.workers.set(jobs.alive_workers(session, now(), self.config.alive_after_s))

    def run_once(self) -> bool:
        """Claim and work one job; False when there was none."""
        with Session(self.engine) as session:
            job = jobs.claim(session, self.name, now(), self.config.lease_s)
            if job is None:
                return False
            session.expunge(job)
        started = time.perf_counter()
        outcome = self._guarded(job)
        self.metrics.seconds.inc(time.perf_counter() - started)
        self.metrics.jobs.labels(outcome).inc()
        return True

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
                while not self.stop.is_set() and self.run_once():
                    pass
            except Exception:  # the database or S3 is away: log, wait, go on
                log.exception("transcoder round failed")
            self.stop.wait(self.config.poll_s)

    # -- one job --------------------------------------------------------------------------------------------
    def _owned(self, job: TranscodeJob, **values: Any) -> None:
        assert job.id is not None
        with Session(self.engine) as session:
            if not jobs.update_owned(session, job.id, self.name, **values):
                raise LeaseLost(f"transcode job {job.id} ({job.key}) is no longer ours")

    def _guarded(self, job: TranscodeJob) -> str:
        try:
            with LeaseKeeper(self.engine, job.id or 0, self.name, self.config.lease_s) as keeper:
                finish = self._work(job, keeper.lost.is_set)
            self._owned(job, state=finish.state, error=finish.error, lease_owner="", finished_at=now())
            if finish.state == jobs.DONE:
                self.jobs_done += 1
            return finish.state
        except LeaseLost as exc:
            log.warning("%s", exc)
            return "retry"
        except Exception as exc:
            log.exception("transcode job %d (%s) failed", job.id, job.key)
            final = job.attempts >= self.config.max_attempts
            state = jobs.FAILED if final else jobs.QUEUED
            try:
                self._abort_recorded(job)
                self._owned(job, state=state, error=f"{type(exc).__name__}: {exc}", lease_owner="")
            except Exception:
                log.exception("cannot record the failure of transcode job %d", job.id)
            return jobs.FAILED if final else "retry"

    def _abort_recorded(self, job: TranscodeJob) -> None:
        """Abort the multipart upload the row records (this worker's, after a failure), if any."""
        with Session(self.engine) as session:
            row = session.get(TranscodeJob, job.id)
            upload_id, target = (row.upload_id, row.target_key) if row is not None else ("", "")
        if upload_id:
            abort_upload(self.client, self.bucket, target, upload_id)
            self._owned(job, upload_id="")

    def _work(self, job: TranscodeJob, lost: Callable[[], bool]) -> Finish:
        if job.upload_id:  # the previous holder died mid-upload: no orphan parts stay behind
            abort_upload(self.client, self.bucket, job.target_key, job.upload_id)
            self._owned(job, upload_id="")
        if job.attempts > self.config.max_attempts:
            return Finish(jobs.FAILED, f"gave up after {job.attempts - 1} attempts: {job.error}")
        if job.verified_at is None:
            if not object_exists(self.client, self.bucket, job.key):
                return Finish(jobs.FAILED, "the raw object is gone and no verified copy was made")
            finish = self._transcode(job, lost)
            if finish is not None:
                return finish
        self._delete_raw(job)
        return Finish(jobs.DONE)

    def _transcode(self, job: TranscodeJob, lost: Callable[[], bool]) -> Finish | None:
        """Write and verify the new object; a Finish when there is nothing to do."""
        reader = ObjectReader(self.client, self.bucket, job.key)
        fmt = reader.metadata.get(META_FORMAT)
        if fmt != RAW_FORMAT:
            return Finish(jobs.SKIPPED, f"not a raw object ({META_FORMAT} {fmt!r})")
        try:
            source = open_reader(reader, self.config.compression_level)
        except RecordingRejected as exc:
            return Finish(jobs.SKIPPED, str(exc))
        try:
            if source.kind == "raw":
                return Finish(jobs.SKIPPED, "FLAC cannot hold it and zstd saves less than 5 % on a sample")
            target = target_key(job.key, reader.metadata, source.kind)
            if target == job.key:
                return Finish(jobs.FAILED, "the new key would be the raw object's own")
            upload = Multipart(self.client, self.bucket, target)
            upload.create(source.content_type, source.metadata)
            self._owned(job, upload_id=upload.upload_id, target_key=target, codec=source.kind)
            for number, data in split(source.body(), source.header, self.config.part_size):
                if lost() or self.stop.is_set():
                    raise LeaseLost(f"transcode job {job.id} ({job.key}): lease lost or stopping")
                upload.put(number, data)
                self._hold_for_tests()
            upload.complete()
        finally:
            source.close()
        self._owned(job, upload_id="")
        self._verify(job, target, reader.metadata)
        self._owned(job, verified_at=now(), original_bytes=source.original_size, stored_bytes=upload.size)
        job.target_key, job.codec, job.stored_bytes = target, source.kind, upload.size
        self.metrics.bytes_in.inc(source.original_size)
        self.metrics.bytes_out.inc(upload.size)
        return None

    def _verify(self, job: TranscodeJob, target: str, raw_meta: dict[str, str]) -> None:
        """A streaming restore of the new object must give the raw object's size and sha256."""
        rebuilt = rebuild_object(self.client, self.bucket, target, lambda _data: None)
        want = (int(raw_meta[META_SIZE]), raw_meta[META_SHA256])
        if (rebuilt.size, rebuilt.sha256) != want:
            remove(self.client, self.bucket, target)
            raise RuntimeError(f"{target} restores to {rebuilt.size} bytes sha256 {rebuilt.sha256}, not {want}")

    def _delete_raw(self, job: TranscodeJob) -> None:
        if not object_exists(self.client, self.bucket, job.target_key):
            raise RuntimeError(f"the verified object {job.target_key} is missing: keeping {job.key}")
        remove(self.client, self.bucket, job.key)
        with Session(self.engine) as session:
            jobs.move_catalog_row(session, job.key, job.target_key, job.codec, job.stored_bytes)
        log.info("transcoded %s -> %s (%s, %d bytes)", job.key, job.target_key, job.codec, job.stored_bytes)

    def _hold_for_tests(self) -> None:
        if self._hold is None:
            return
        (self._hold / f"{self.name}.holding").touch()
        while not (self._hold / "release").exists() and not self.stop.is_set():
            time.sleep(0.05)
