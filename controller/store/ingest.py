"""Writing a batch of ingested agent messages in one transaction, with set-based statements.

2,000 agents × telemetry every 5 s is 400 messages a second: one transaction per flush, one
executemany upsert for the latest telemetry per agent, one bulk insert for the history and the
events. Telemetry older than what is stored (reordered by shared subscriptions) does not overwrite
the latest values. State messages are applied in arrival order (a Last Will carries the ``sent_at``
of the connect, so ``sent_at`` cannot order them); the time of an online/offline change is when the
controller received it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from controller.store.engine import to_db_time
from controller.store.models import Agent, IngestReject, TelemetrySample, UploadEvent
from fleet_protocol import AgentStatus, Birth, Event, State, Telemetry

AGENT: Table = Agent.__table__  # type: ignore[attr-defined]
SAMPLE: Table = TelemetrySample.__table__  # type: ignore[attr-defined]
EVENT: Table = UploadEvent.__table__  # type: ignore[attr-defined]
REJECT: Table = IngestReject.__table__  # type: ignore[attr-defined]

BIRTH_FIELDS = (
    "site",
    "model",
    "cores",
    "ram_bytes",
    "disk_bytes",
    "software_version",
    "flac_encode_bps",
    "bucket",
    "prefix",
    "simulated",
)
LATEST_FIELDS = (
    "temperature_c",
    "throttled",
    "cpu_percent",
    "mem_available_bytes",
    "disk_free_bytes",
    "backlog_files",
    "backlog_bytes",
    "backlog_oldest_age_s",
    "active_uploads",
    "throughput_bps",
    "bytes_uploaded_total",
    "retries_total",
    "errors_total",
    "assignment_version",
)
SAMPLE_FIELDS = (
    "temperature_c",
    "throttled",
    "cpu_percent",
    "backlog_files",
    "backlog_bytes",
    "throughput_bps",
    "active_uploads",
    "assignment_version",
)


@dataclass
class Reject:
    count: int = 0
    last_error: str = ""
    last_topic: str = ""
    last_at: datetime | None = None


@dataclass
class IngestBatch:
    births: list[tuple[Birth, datetime]] = field(default_factory=list)
    states: list[tuple[State, datetime]] = field(default_factory=list)
    telemetry: list[tuple[Telemetry, datetime]] = field(default_factory=list)
    events: list[tuple[Event, datetime]] = field(default_factory=list)
    rejects: dict[str, Reject] = field(default_factory=dict)
    #: delivery receipts of the batch's messages, to call once the batch is committed (not stored here)
    acks: list[Callable[[], None]] = field(default_factory=list)
    #: the received items ``(topic, payload, received_at, ack)``, to store them one by one when the batch
    #: as a whole cannot be stored (one bad value must not take the others down)
    raw: list[tuple[str, bytes, float, Callable[[], None] | None]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.births) + len(self.states) + len(self.telemetry) + len(self.events) + len(self.rejects)

    def reject(self, kind: str, error: str, topic: str, at: datetime) -> None:
        entry = self.rejects.setdefault(kind, Reject())
        entry.count += 1
        entry.last_error, entry.last_topic, entry.last_at = error[:2000], topic[:512], at


def upsert(session: Session, table: Table) -> Any:
    """A dialect INSERT that knows ``on_conflict_do_update`` (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database {dialect!r} is not supported (use SQLite or PostgreSQL)")


_AGENT_DEFAULTS: dict[str, Any] = Agent(id="-").model_dump(exclude={"id"})


def _agent_row(agent_id: str, **values: Any) -> dict[str, Any]:
    return {**_AGENT_DEFAULTS, "id": agent_id, **values}


def _write_births(session: Session, births: list[tuple[Birth, datetime]]) -> None:
    latest = {birth.agent_id: (birth, at) for birth, at in births}
    rows = [
        _agent_row(
            agent_id,
            **{name: getattr(birth, name) for name in BIRTH_FIELDS},
            capabilities=birth.model_dump(mode="json"),
            birth_at=to_db_time(birth.sent_at),
        )
        for agent_id, (birth, _at) in sorted(latest.items())
    ]
    stmt = upsert(session, AGENT)
    updated = (*BIRTH_FIELDS, "capabilities", "birth_at")
    session.execute(
        stmt.on_conflict_do_update(index_elements=["id"], set_={n: stmt.excluded[n] for n in updated}), rows
    )


def _write_state(session: Session, state: State, at: datetime) -> None:
    online = state.state is AgentStatus.ONLINE
    at = to_db_time(at)
    row = _agent_row(
        state.agent_id,
        online=online,
        online_since=at if online else None,
        offline_since=None if online else at,
        last_seen=at,
    )
    stmt = upsert(session, AGENT)
    was_online = AGENT.c.online
    values: dict[str, Any] = {"online": stmt.excluded.online, "last_seen": stmt.excluded.last_seen}
    if online:
        values["online_since"] = case((was_online, AGENT.c.online_since), else_=stmt.excluded.online_since)
    else:
        values["offline_since"] = case((was_online, stmt.excluded.offline_since), else_=AGENT.c.offline_since)
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values), [row])


def _write_telemetry(
    session: Session, telemetry: list[tuple[Telemetry, datetime]], concurrency: Mapping[str, int]
) -> None:
    samples = []
    latest: dict[str, tuple[Telemetry, datetime]] = {}
    for message, received in telemetry:
        samples.append(
            {
                "agent_id": message.agent_id,
                "at": to_db_time(message.sent_at),
                "received_at": to_db_time(received),
                "concurrency": concurrency.get(message.agent_id),
                **{name: getattr(message, name) for name in SAMPLE_FIELDS},
            }
        )
        kept = latest.get(message.agent_id)
        if kept is None or kept[0].sent_at <= message.sent_at:
            latest[message.agent_id] = (message, received)
    session.execute(upsert(session, SAMPLE), samples)
    rows = [
        _agent_row(
            agent_id,
            **{name: getattr(message, name) for name in LATEST_FIELDS},
            telemetry_at=to_db_time(message.sent_at),
            telemetry_seq=message.seq,
            online=True,
            online_since=to_db_time(received),
            last_seen=to_db_time(received),
        )
        for agent_id, (message, received) in sorted(latest.items())
    ]
    stmt = upsert(session, AGENT)
    values: dict[str, Any] = {n: stmt.excluded[n] for n in (*LATEST_FIELDS, "telemetry_at", "telemetry_seq")}
    values |= {
        "online": True,
        "last_seen": stmt.excluded.last_seen,
        "online_since": case((AGENT.c.online, AGENT.c.online_since), else_=stmt.excluded.online_since),
    }
    newer = or_(AGENT.c.telemetry_at.is_(None), AGENT.c.telemetry_at <= stmt.excluded.telemetry_at)
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values, where=newer), rows)


def _write_events(session: Session, events: list[tuple[Event, datetime]]) -> None:
    rows = [
        {
            "agent_id": e.agent_id,
            "kind": e.kind.value,
            "file": e.file[:1024],
            "key": e.key[:1024],
            "original_bytes": e.original_bytes,
            "stored_bytes": e.stored_bytes,
            "sha256": e.original_sha256,
            "stored_as": e.stored_as,
            "duration_s": e.duration_s,
            "retries": e.retries,
            "reason": e.reason,
            "at": to_db_time(e.sent_at),
            "seq": e.seq,
        }
        for e, _received in events
    ]
    # A message delivered twice, or a completion reported again, is already there: skip it (EVENT_DEDUP).
    session.execute(upsert(session, EVENT).on_conflict_do_nothing(), rows)


def _write_rejects(session: Session, rejects: dict[str, Reject]) -> None:
    rows = [
        {
            "kind": kind,
            "count": r.count,
            "last_error": r.last_error,
            "last_topic": r.last_topic,
            "last_at": None if r.last_at is None else to_db_time(r.last_at),
        }
        for kind, r in sorted(rejects.items())
    ]
    stmt = upsert(session, REJECT)
    values = {
        "count": REJECT.c.count + stmt.excluded["count"],
        "last_error": stmt.excluded.last_error,
        "last_topic": stmt.excluded.last_topic,
        "last_at": stmt.excluded.last_at,
    }
    session.execute(stmt.on_conflict_do_update(index_elements=["kind"], set_=values), rows)


def write_batch(session: Session, batch: IngestBatch, concurrency: Mapping[str, int] | None = None) -> None:
    """Store every message of ``batch`` in one transaction (commits). ``concurrency``: in force per agent.

    On PostgreSQL the commit does not wait for the WAL flush (``synchronous_commit = off`` for this
    transaction only): a crash of the database may lose the last fraction of a second of telemetry,
    never consistency, and ingest does not queue behind fsyncs.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    if batch.births:
        _write_births(session, batch.births)
    for state, at in batch.states:
        _write_state(session, state, at)
    if batch.telemetry:
        _write_telemetry(session, batch.telemetry, concurrency or {})
    if batch.events:
        _write_events(session, batch.events)
    if batch.rejects:
        _write_rejects(session, batch.rejects)
    session.commit()


def mark_stale_offline(session: Session, *, cutoff: datetime, now: datetime) -> list[str]:
    """Agents marked online whose last message is older than ``cutoff`` go offline (commits)."""
    stale = and_(AGENT.c.online, or_(AGENT.c.last_seen.is_(None), AGENT.c.last_seen < to_db_time(cutoff)))
    ids = [row[0] for row in session.execute(AGENT.select().with_only_columns(AGENT.c.id).where(stale))]
    if ids:
        session.execute(
            AGENT.update().where(stale, AGENT.c.id.in_(ids)).values(online=False, offline_since=to_db_time(now))
        )
    session.commit()
    return sorted(ids)


def prune_telemetry(session: Session, *, before: datetime) -> int:
    """Delete telemetry history older than ``before`` (commits); returns the number of rows."""
    result = session.execute(delete(SAMPLE).where(SAMPLE.c.at < to_db_time(before)))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
