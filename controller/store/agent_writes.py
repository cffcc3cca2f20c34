"""Agent messages → rows: a batch of births, states, telemetry, events and rejects written in one transaction
with set-based statements, and the dead letters of messages that cannot be written.

2,000 agents × telemetry every 5 s is 400 messages a second: one transaction per flush, one
executemany upsert for the latest telemetry per agent, one bulk insert for the history and the
events. Telemetry older than what is stored (reordered by shared subscriptions) does not overwrite
the latest values. State messages are applied in arrival order (a Last Will carries the ``sent_at``
of the connect, so ``sent_at`` cannot order them); the time of an online/offline change is when the
controller received it.

Times an agent reports are bounded by when they arrived (``observed_at``): a message dated later than its
arrival + ``skew`` is taken as sent on arrival, so a wrong clock (or a lie) cannot freeze an agent's
latest values or keep it looking alive. An agent's ``site`` is provisioning (``sites``: agent id → site, from
the controller's configuration); the site a birth names is stored as ``reported_site`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, text
from sqlmodel import Session, select

from controller.store.database import lock_agent_writes, to_db_time, upsert
from controller.store.models import (
    DEAD_LETTERS_KEPT,
    Agent,
    AgentCapabilities,
    AgentTelemetryBase,
    DeadLetter,
    EncodeMeasures,
    IngestReject,
    TelemetryReading,
)
from controller.store.tables import AGENT, DEAD, EVENT, REJECT, SAMPLE, column, copied_fields, incoming, names
from controller.store.usage import record_usage
from fleet_protocol.messages import Birth, Event, State, Telemetry
from fleet_protocol.vocabulary import AgentStatus

#: how far in the future a reported time may be (clocks a little ahead); later is taken as arrival + this
DEFAULT_SKEW = timedelta(seconds=5)
#: a dead letter keeps this much of the payload
DEAD_PAYLOAD_BYTES = 64 * 1024

#: values copied by name from the messages: the field groups of the models
BIRTH_FIELDS = (*copied_fields(AgentCapabilities, Birth), *copied_fields(EncodeMeasures, Birth))
LATEST_FIELDS = copied_fields(AgentTelemetryBase, Telemetry)
SAMPLE_FIELDS = copied_fields(TelemetryReading, Telemetry)

AGENT_ID, ONLINE, TELEMETRY_AT = column(Agent.id), column(Agent.online), column(Agent.telemetry_at)
ONLINE_SINCE, OFFLINE_SINCE = column(Agent.online_since), column(Agent.offline_since)
REJECT_COUNT = column(IngestReject.count)
DEAD_ID = column(DeadLetter.id)


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


_AGENT_DEFAULTS: dict[str, Any] = Agent(id="-").model_dump(exclude={"id"})


def observed_at(sent_at: datetime, received: datetime, skew: timedelta = DEFAULT_SKEW) -> datetime:
    """When a message counts as sent (UTC): its ``sent_at``, unless that is later than ``received + skew`` (a
    clock far ahead, or a lie) or cannot be converted to UTC (year 1 or 9999 with an offset): then
    ``received``. So a message dated in the future orders like one sent on arrival, and the agent's next
    honest message counts."""
    try:
        sent = to_db_time(sent_at)
        if sent <= received + skew:
            return sent
    except (OverflowError, ValueError):
        pass
    return to_db_time(received)


@dataclass(frozen=True)
class _Context:
    sites: Mapping[str, str]
    skew: timedelta

    def row(self, agent_id: str, **values: Any) -> dict[str, Any]:
        """A whole ``agent`` row for an insert: defaults, the provisioned site, then ``values``."""
        return {**_AGENT_DEFAULTS, "id": agent_id, "site": self.sites.get(agent_id, ""), **values}

    def at(self, message: Birth | Telemetry | Event, received: datetime) -> datetime:
        return observed_at(message.sent_at, received, self.skew)


def _write_births(session: Session, births: list[tuple[Birth, datetime]], ctx: _Context) -> None:
    latest = {birth.agent_id: (birth, at) for birth, at in births}
    rows = [
        ctx.row(
            agent_id,
            **{name: getattr(birth, name) for name in BIRTH_FIELDS},
            reported_site=birth.site[:128],
            capabilities=birth.model_dump(mode="json"),
            birth_at=ctx.at(birth, received),
        )
        for agent_id, (birth, received) in sorted(latest.items())
    ]
    stmt = upsert(session, AGENT)
    updated = (*BIRTH_FIELDS, *names(Agent.site, Agent.reported_site, Agent.capabilities, Agent.birth_at))
    session.execute(stmt.on_conflict_do_update(index_elements=[AGENT_ID], set_=incoming(stmt, updated)), rows)


def _write_state(session: Session, state: State, at: datetime, ctx: _Context) -> None:
    online = state.state is AgentStatus.ONLINE
    at = to_db_time(at)
    row = ctx.row(
        state.agent_id,
        online=online,
        online_since=at if online else None,
        offline_since=None if online else at,
        last_seen=at,
    )
    stmt = upsert(session, AGENT)
    values = incoming(stmt, names(Agent.online, Agent.last_seen))
    if online:
        values[ONLINE_SINCE.key] = case((ONLINE, ONLINE_SINCE), else_=stmt.excluded[ONLINE_SINCE.key])
    else:
        values[OFFLINE_SINCE.key] = case((ONLINE, stmt.excluded[OFFLINE_SINCE.key]), else_=OFFLINE_SINCE)
    session.execute(stmt.on_conflict_do_update(index_elements=[AGENT_ID], set_=values), [row])


def _write_telemetry(
    session: Session, telemetry: list[tuple[Telemetry, datetime]], concurrency: Mapping[str, int], ctx: _Context
) -> None:
    samples = []
    latest: dict[str, tuple[Telemetry, datetime, datetime]] = {}
    for message, received in telemetry:
        at = ctx.at(message, received)
        samples.append(
            {
                "agent_id": message.agent_id,
                "at": at,
                "received_at": to_db_time(received),
                "concurrency": concurrency.get(message.agent_id),
                **{name: getattr(message, name) for name in SAMPLE_FIELDS},
            }
        )
        kept = latest.get(message.agent_id)
        if kept is None or kept[1] <= at:
            latest[message.agent_id] = (message, at, received)
    session.execute(upsert(session, SAMPLE), samples)
    record_usage(session, {agent_id: (m.bytes_uploaded_total, at) for agent_id, (m, at, _r) in latest.items()})
    _write_latest(session, latest, ctx)


def _write_latest(session: Session, latest: Mapping[str, tuple[Telemetry, datetime, datetime]], ctx: _Context) -> None:
    """Each agent's newest reading of the batch, unless the stored one is newer (``telemetry_at``)."""
    rows = [
        ctx.row(
            agent_id,
            **{name: getattr(message, name) for name in LATEST_FIELDS},
            telemetry_at=at,
            telemetry_seq=message.seq,
            online=True,
            online_since=to_db_time(received),
            last_seen=to_db_time(received),
        )
        for agent_id, (message, at, received) in sorted(latest.items())
    ]
    stmt = upsert(session, AGENT)
    values = incoming(stmt, (*LATEST_FIELDS, *names(Agent.telemetry_at, Agent.telemetry_seq, Agent.last_seen)))
    values |= {ONLINE.key: True, ONLINE_SINCE.key: case((ONLINE, ONLINE_SINCE), else_=stmt.excluded[ONLINE_SINCE.key])}
    newer = or_(TELEMETRY_AT.is_(None), stmt.excluded[TELEMETRY_AT.key] >= TELEMETRY_AT)
    session.execute(stmt.on_conflict_do_update(index_elements=[AGENT_ID], set_=values, where=newer), rows)


def _write_events(session: Session, events: list[tuple[Event, datetime]], ctx: _Context) -> None:
    rows = [
        {
            "agent_id": e.agent_id,
            "kind": str(e.kind),  # a known EventKind's value, or a newer sender's kind as it came
            "file": e.file[:1024],
            "key": e.key[:1024],
            "original_bytes": e.original_bytes,
            "stored_bytes": e.stored_bytes,
            "sha256": e.original_sha256,
            "stored_as": e.stored_codec or e.stored_as,  # 'flac', 'raw' or 'zstd'
            "duration_s": e.duration_s,
            "retries": e.retries,
            "reason": e.reason,
            "at": ctx.at(e, received),
            "seq": e.seq,
        }
        for e, received in events
    ]
    # A message delivered twice, or a completion reported again, is already there: skip it (EVENT_DEDUP).
    session.execute(upsert(session, EVENT).on_conflict_do_nothing(), rows)


def _write_rejects(session: Session, rejects: Mapping[str, Reject]) -> None:
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
    values = incoming(stmt, names(IngestReject.last_error, IngestReject.last_topic, IngestReject.last_at))
    values[REJECT_COUNT.key] = REJECT_COUNT + stmt.excluded[REJECT_COUNT.key]
    session.execute(stmt.on_conflict_do_update(index_elements=[column(IngestReject.kind)], set_=values), rows)


def write_batch(
    session: Session,
    batch: IngestBatch,
    concurrency: Mapping[str, int] | None = None,
    *,
    sites: Mapping[str, str] | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> None:
    """Store every message of ``batch`` in one transaction (commits). ``concurrency``: in force per agent;
    ``sites``: the provisioned site per agent (not listed: no site); ``skew``: see ``observed_at``.

    On PostgreSQL the commit does not wait for the WAL flush (``synchronous_commit = off`` for this
    transaction only): a crash of the database may lose the last fraction of a second of telemetry,
    never consistency, and ingest does not queue behind fsyncs. Other controllers' batches wait for this one
    (``lock_agent_writes``: no deadlocks between them).
    """
    ctx = _Context(sites or {}, skew)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    lock_agent_writes(session)
    if batch.births:
        _write_births(session, batch.births, ctx)
    for state, at in batch.states:
        _write_state(session, state, at, ctx)
    if batch.telemetry:
        _write_telemetry(session, batch.telemetry, concurrency or {}, ctx)
    if batch.events:
        _write_events(session, batch.events, ctx)
    if batch.rejects:
        _write_rejects(session, batch.rejects)
    session.commit()


def _printable(text_: str, limit: int) -> str:
    """``text_`` shortened, with what a database text column may refuse (NUL, lone surrogates) escaped."""
    short = text_[:limit].replace("\x00", "\\x00")
    return short.encode("utf-8", "backslashreplace").decode("utf-8")


def write_dead_letter(
    session: Session,
    *,
    topic: str,
    payload: bytes,
    received: datetime,
    reason: str,
    error: str,
    controller_id: str = "",
    keep: int = DEAD_LETTERS_KEPT,
) -> None:
    """Keep a message that cannot be stored, count it under ``reason`` in ``ingest_reject`` and drop the
    oldest dead letters beyond ``keep`` (commits). Only bytes and escaped text: this write must not fail
    for the same data the message's own write failed for."""
    at = to_db_time(received)
    lock_agent_writes(session)  # its ``ingest_reject`` row: the batches' order (``write_batch``)
    topic, reason, error = _printable(topic, 512), _printable(reason, 96), _printable(error, 2000)
    row = {
        "at": at,
        "topic": topic,
        "payload": bytes(payload[:DEAD_PAYLOAD_BYTES]),
        "reason": reason,
        "error": error,
        "controller_id": controller_id[:64],
    }
    session.execute(DEAD.insert(), [row])
    _write_rejects(session, {reason: Reject(1, error, topic, at)})
    newest = session.exec(select(func.max(DEAD_ID))).one()
    session.execute(delete(DEAD).where((newest or 0) - keep >= DEAD_ID))
    session.commit()
