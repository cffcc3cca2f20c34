"""Alerts and their notifications in the store (tables ``alert`` and ``alert_notification``).

``apply`` writes one evaluation's ``Changes`` and queues their notifications in the same transaction (the
outbox): an alert that opens is never without its notification, even if the controller stops right after.
The notifier takes due rows (``due``) and records each attempt (``delivered``, ``failed``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import Session

from controller.alerting.rules import Firing
from controller.alerting.state import AlertInstance, Changes, Open, webhook_payload
from controller.store.database import as_utc, to_db_time
from controller.store.models import AlertNotification, AlertRecord, ControllerInstance, UploadEvent
from controller.store.tables import ALERT, NOTIFICATION, column

FP, RESOLVED, SCOPE = column(AlertRecord.fingerprint), column(AlertRecord.resolved_at), column(AlertRecord.scope)


@dataclass(frozen=True)
class Outbox:
    """Where notifications go: the configured webhook URLs and the dashboard's address for links."""

    webhooks: Sequence[str] = ()
    external_url: str = ""

    def generator_url(self, labels: Mapping[str, str]) -> str:
        base = self.external_url.rstrip("/")
        if not base:
            return ""
        return f"{base}/agents/{labels['agent']}" if labels.get("agent") else f"{base}/"


def open_alerts(session: Session) -> dict[str, Open]:
    rows = session.execute(select(FP, SCOPE, column(AlertRecord.started_at), column(AlertRecord.notified_at))
                           .where(RESOLVED.is_(None)))  # fmt: skip
    return {fp: Open(fp, scope, to_db_time(started), as_utc(notified)) for fp, scope, started, notified in rows}


def _instance(row: AlertRecord, outbox: Outbox) -> AlertInstance:
    labels = {str(k): str(v) for k, v in row.labels.items()}
    return AlertInstance(
        row.fingerprint,
        labels,
        {str(k): str(v) for k, v in row.annotations.items()},
        to_db_time(row.started_at),
        as_utc(row.resolved_at),
        outbox.generator_url(labels),
    )


def _enqueue(session: Session, row: AlertRecord, now: datetime, outbox: Outbox) -> None:
    assert row.id is not None
    payload = webhook_payload(_instance(row, outbox), external_url=outbox.external_url)
    for url in outbox.webhooks:
        session.add(
            AlertNotification(
                alert_id=row.id,
                scope=row.scope,
                webhook=url,
                status=payload["status"],
                payload=payload,
                created_at=to_db_time(now),
                next_attempt_at=to_db_time(now),
            )
        )


def _record(firing: Firing, now: datetime) -> AlertRecord:
    since = firing.since if firing.since is not None and firing.since <= now else now
    return AlertRecord(
        fingerprint=firing.fingerprint,
        kind=firing.kind.value,
        alertname=firing.labels["alertname"],
        severity=firing.labels.get("severity", ""),
        scope=firing.scope,
        agent_id=firing.labels.get("agent", ""),
        labels=dict(firing.labels),
        annotations=firing.annotations,
        started_at=to_db_time(since),
        notified_at=to_db_time(now),
    )


def apply(session: Session, changes: Changes, now: datetime, outbox: Outbox) -> None:
    """Open, resolve and repeat as ``changes`` says, with their notifications (one transaction, commits)."""
    for firing in changes.opened:
        row = _record(firing, now)
        session.add(row)
        session.flush()
        _enqueue(session, row, now, outbox)
    for fingerprints, resolve in ((changes.resolved, True), (changes.repeat, False)):
        if not fingerprints:
            continue
        rows = session.scalars(select(AlertRecord).where(FP.in_(fingerprints), RESOLVED.is_(None))).all()
        for row in rows:
            if resolve:
                row.resolved_at = to_db_time(now)
            else:
                row.notified_at = to_db_time(now)
            session.add(row)
            session.flush()
            _enqueue(session, row, now, outbox)
    session.commit()


@dataclass(frozen=True)
class Listed:
    """An alert as lists show it: a few plain columns, read without its labels and annotations as a whole."""

    agent_id: str
    kind: str
    alertname: str
    severity: str
    summary: str | None
    started_at: datetime | None
    resolved_at: datetime | None


def recent(session: Session, now: datetime, resolved_within: timedelta, agent_id: str | None = None) -> list[Listed]:
    """Open alerts, then those resolved within ``resolved_within``; newest first in each; of one agent or all.

    Columns only (the summary read out of the annotations by the database): at 10,000 alerts this is the
    difference between milliseconds and a second for every fleet read."""
    cutoff = to_db_time(now - resolved_within)
    agent, resolved = column(AlertRecord.agent_id), column(AlertRecord.resolved_at)
    summary = column(AlertRecord.annotations)["summary"].as_string()
    query = (
        select(agent, column(AlertRecord.kind), column(AlertRecord.alertname), column(AlertRecord.severity), summary,
               column(AlertRecord.started_at), resolved)
        .where(or_(resolved.is_(None), resolved >= cutoff))
        .order_by(RESOLVED.is_not(None), column(AlertRecord.started_at).desc(), column(AlertRecord.id).desc())
    )  # fmt: skip
    if agent_id is not None:
        query = query.where(agent == agent_id)
    return [Listed(*row) for row in session.execute(query)]


def live_controllers(session: Session, now: datetime, ttl_s: float) -> list[str]:
    last_seen = column(ControllerInstance.last_seen)
    cutoff = to_db_time(now - timedelta(seconds=ttl_s))
    return sorted(session.scalars(select(column(ControllerInstance.id)).where(last_seen >= cutoff)).all())


def last_completed(session: Session, since: datetime) -> dict[str, datetime]:
    """The newest ``upload_completed`` event per agent, of those since ``since`` (the time index bounds the read)."""
    agent, at = column(UploadEvent.agent_id), column(UploadEvent.at)
    recent = (column(UploadEvent.kind) == "upload_completed") & (at >= to_db_time(since))
    query = select(agent, func.max(at)).where(recent).group_by(agent)
    return {a: to_db_time(t) for a, t in session.execute(query) if t is not None}


# --- the outbox -------------------------------------------------------------------------------------

_DELIVERED = column(AlertNotification.delivered_at)


def due(session: Session, scopes: Collection[str], now: datetime, limit: int = 100) -> list[AlertNotification]:
    """Notifications of ``scopes`` waiting and due now, oldest first."""
    query = (
        select(AlertNotification)
        .where(
            and_(
                _DELIVERED.is_(None),
                column(AlertNotification.given_up).is_(False),
                column(AlertNotification.next_attempt_at) <= to_db_time(now),
                column(AlertNotification.scope).in_(list(scopes)),
            )
        )
        .order_by(column(AlertNotification.id))
        .limit(limit)
    )
    return list(session.scalars(query).all())


def record_attempt(session: Session, notification_id: int, values: Mapping[str, Any]) -> None:
    """Write what one delivery attempt did (commits)."""
    session.execute(update(NOTIFICATION).where(column(AlertNotification.id) == notification_id).values(**values))
    session.commit()


def prune(session: Session, before: datetime) -> int:
    """Delete alerts resolved before ``before`` and their notifications, and notifications done (delivered or
    given up) before it (commits); returns the number of alerts deleted."""
    cutoff = to_db_time(before)
    resolved, delivered = column(AlertRecord.resolved_at), column(AlertNotification.delivered_at)
    given_up, created = column(AlertNotification.given_up), column(AlertNotification.created_at)
    old = select(column(AlertRecord.id)).where(resolved < cutoff)
    done = or_(delivered < cutoff, and_(given_up.is_(True), created < cutoff))
    session.execute(delete(NOTIFICATION).where(or_(column(AlertNotification.alert_id).in_(old), done)))
    removed: int = session.exec(delete(ALERT).where(resolved < cutoff)).rowcount
    session.commit()
    return removed
