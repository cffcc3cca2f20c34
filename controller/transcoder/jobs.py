"""The transcoder's job queue in the database: filled from raw uploads, claimed under a lease.

Claiming is safe with several workers: on PostgreSQL the candidate row is locked with
``SELECT ... FOR UPDATE SKIP LOCKED`` (workers never wait on each other's row); on both databases the claim itself
is one ``UPDATE ... WHERE`` that still requires the row to be claimable, and counts only when it changed a row,
so two workers can never both hold a job (SQLite serialises writers). Every later write of a worker is
conditional on still holding the lease (``update_owned``): a worker whose lease was taken over changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, select

from controller.store.database import to_db_time, upsert
from controller.store.models import Recording, TranscodeJob, TranscoderWorker, UploadEvent
from controller.store.tables import column, table_of
from fleet_protocol.vocabulary import EventKind

QUEUED, RUNNING, DONE, SKIPPED, FAILED = "queued", "running", "done", "skipped", "failed"
#: ids of upload events may commit out of order: look this far back behind the newest event already queued
REPLAY_IDS = 10_000
MAX_ERROR = 500


def enqueue_raw_uploads(session: Session, now: datetime) -> int:
    """One 'queued' job per raw object an agent reported stored (``upload_completed``, ``stored_as`` 'raw')
    that has no job yet. Returns how many rows were inserted."""
    newest = session.exec(select(func.max(column(TranscodeJob.upload_event_id)))).one()
    since = (newest or 0) - REPLAY_IDS
    events = session.exec(
        select(column(UploadEvent.id), column(UploadEvent.key), column(UploadEvent.agent_id))
        .where(
            column(UploadEvent.kind) == EventKind.UPLOAD_COMPLETED.value,
            column(UploadEvent.stored_as) == "raw",
            column(UploadEvent.key) != "",
            column(UploadEvent.id) > since,
        )
        .order_by(column(UploadEvent.id))
    ).all()
    if not events:
        return 0
    rows = [
        {"key": key, "agent_id": agent, "upload_event_id": event_id, "state": QUEUED, "created_at": to_db_time(now)}
        for event_id, key, agent in events
    ]
    defaults = {"lease_owner": "", "attempts": 0, "error": "", "target_key": "", "upload_id": "", "codec": ""}
    defaults |= {"original_bytes": 0, "stored_bytes": 0}
    stmt = upsert(session, table_of(TranscodeJob)).on_conflict_do_nothing(index_elements=["key"])
    result: CursorResult[Any] = session.execute(stmt, [defaults | row for row in rows])  # type: ignore[assignment]
    session.commit()
    return max(0, result.rowcount or 0)


def _claimable(now: datetime) -> Any:
    state, expires = column(TranscodeJob.state), column(TranscodeJob.lease_expires_at)
    return or_(state == QUEUED, and_(state == RUNNING, expires < to_db_time(now)))


def claim(session: Session, owner: str, now: datetime, lease_s: float) -> TranscodeJob | None:
    """Take the oldest claimable job (queued, or running with an expired lease) for ``owner``."""
    candidate = select(column(TranscodeJob.id)).where(_claimable(now)).order_by(column(TranscodeJob.id)).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    job_id = session.exec(candidate).first()
    if job_id is None:
        session.commit()
        return None
    taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(TranscodeJob)
        .where(column(TranscodeJob.id) == job_id, _claimable(now))
        .values(
            state=RUNNING,
            lease_owner=owner,
            lease_expires_at=to_db_time(now + timedelta(seconds=lease_s)),
            attempts=column(TranscodeJob.attempts) + 1,
            started_at=to_db_time(now),
        )
    )
    session.commit()
    if taken.rowcount != 1:
        return None  # another worker was faster (SQLite): the caller simply asks again
    return session.get(TranscodeJob, job_id)


def update_owned(session: Session, job_id: int, owner: str, **values: Any) -> bool:
    """Write ``values`` to the job only while ``owner`` still holds it; False: the lease was lost."""
    if "error" in values:
        values["error"] = str(values["error"])[:MAX_ERROR]
    done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(TranscodeJob)
        .where(
            column(TranscodeJob.id) == job_id,
            column(TranscodeJob.lease_owner) == owner,
            column(TranscodeJob.state) == RUNNING,
        )
        .values(**values)
    )
    session.commit()
    return done.rowcount == 1


def renew(session: Session, job_id: int, owner: str, now: datetime, lease_s: float) -> bool:
    return update_owned(session, job_id, owner, lease_expires_at=to_db_time(now + timedelta(seconds=lease_s)))


def heartbeat(session: Session, worker: str, now: datetime, jobs_done: int) -> None:
    at = to_db_time(now)
    stmt = upsert(session, table_of(TranscoderWorker))
    stmt = stmt.values(id=worker, started_at=at, seen_at=at, jobs_done=jobs_done)
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"seen_at": at, "jobs_done": jobs_done}))
    session.commit()


def alive_workers(session: Session, now: datetime, within_s: float) -> int:
    """Transcoder workers whose heartbeat is at most ``within_s`` old: the central side's capacity."""
    since = to_db_time(now - timedelta(seconds=within_s))
    count = session.exec(select(func.count()).where(column(TranscoderWorker.seen_at) >= since)).one()
    session.commit()
    return int(count)


def queue_depth(session: Session) -> int:
    count = session.exec(select(func.count()).where(column(TranscodeJob.state).in_([QUEUED, RUNNING]))).one()
    session.commit()
    return int(count)


def move_catalog_row(session: Session, key: str, target: str, codec: str, stored_bytes: int) -> None:
    """The recordings catalog follows the object to its new key (no row yet: nothing to do)."""
    session.execute(
        update(Recording).where(column(Recording.key) == key).values(key=target, codec=codec, stored_bytes=stored_bytes)
    )
    session.commit()
