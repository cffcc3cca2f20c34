"""The dashboard's read model over the controller's tables (``controller.store``); reads only.

Every function takes an open ``Session`` and returns the plain values of ``dashboard.readmodel``,
with times made UTC-aware. The tables belong to the controller; nothing here defines or alters one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from controller.alerting import store as alert_store
from controller.policy import PolicyConfig
from controller.store import repo
from controller.store.assignments import settings_of
from controller.store.database import as_utc, to_db_time
from controller.store.models import (
    Agent,
    AuditEntry,
    CurrentAssignment,
    OperatorOverride,
    TelemetrySample,
    UploadEvent,
)
from dashboard.readmodel import (
    AgentDetail,
    AgentRow,
    Alert,
    AssignmentView,
    AuditRow,
    FleetSnapshot,
    OverrideView,
    TelemetryPoint,
    UploadRow,
    UploadTotals,
    compression_ratio,
    describe_audit,
    describe_target,
    downsample,
    fleet_totals,
)
from fleet_protocol.assignment import SETTINGS_FIELDS
from fleet_protocol.vocabulary import throttle_words

FAILURE_KINDS = ("upload_failed", "file_rejected")
#: the kinds of one file's upload; every other event (an agent's own, or a kind this release does not know)
#: is listed apart (``other_events``)
UPLOAD_KINDS = ("upload_started", "upload_resumed", "upload_completed", *FAILURE_KINDS)
#: resolved alerts stay listed this long
RECENTLY_RESOLVED = timedelta(hours=24)


#: what an agent measures of itself: in its row and its telemetry history, by these names
_OWN_MEASUREMENTS = ("mqtt_rtt_s", "s3_ttfb_s", "process_cpu_percent", "process_rss_bytes")

# The fleet is read with one joined query of plain columns (no ORM objects) into plain dataclasses:
# this is what keeps a 2,000-agent fleet page fast. See docs/bench/dashboard.md.
_AGENT_COLUMNS: tuple[Any, ...] = tuple(
    col(getattr(Agent, name)).label(name)
    for name in (
        "id",
        "site",
        "model",
        "online",
        "online_since",
        "offline_since",
        "last_seen",
        "temperature_c",
        "throttled",
        "backlog_files",
        "backlog_bytes",
        "backlog_oldest_age_s",
        "throughput_bps",
        "active_uploads",
        "errors_total",
        "retries_total",
        "bytes_uploaded_total",
        "assignment_version",
        "software_version",
        "backlog_eta_s",
        *_OWN_MEASUREMENTS,
    )
)
_ASSIGNMENT_FIELDS = ("version", *SETTINGS_FIELDS, "reason", "at")
_ASSIGNMENT_COLUMNS: tuple[Any, ...] = (
    col(CurrentAssignment.thermal_level).label("thermal_level"),
    *(col(getattr(CurrentAssignment, name)).label(name) for name in _ASSIGNMENT_FIELDS),
)


def _fleet_query() -> Any:
    return (
        sa_select(*_AGENT_COLUMNS, *_ASSIGNMENT_COLUMNS)
        .select_from(Agent)
        .outerjoin(CurrentAssignment, col(CurrentAssignment.agent_id) == col(Agent.id))
        .order_by(col(Agent.id))
    )


def _assignment(row: Any) -> AssignmentView:
    """A stored assignment (anything with its columns as attributes): the store's settings, and the rest."""
    return _assignment_of((row.version, *(getattr(row, name) for name in SETTINGS_FIELDS), row.reason, row.at))


def _assignment_of(values: Sequence[Any]) -> AssignmentView:
    """An assignment from its columns in ``_ASSIGNMENT_FIELDS`` order (a fleet row's tail: by position, as
    reading a row's columns by name costs more than the rest of the row)."""
    version, *settings_values, reason, at = values
    settings, windows = _settings(tuple(tuple(v) if isinstance(v, list) else v for v in settings_values))
    return AssignmentView(**settings, windows=windows, version=version, reason=reason, at=as_utc(at))


@lru_cache(maxsize=1024)
def _settings(values: tuple[Any, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``settings_of`` for one combination of stored values (a fleet shares a few: checked once, not per agent):
    the settings but the windows, and the windows (a tuple). Callers spread the dict and never change it."""
    settings = settings_of(SimpleNamespace(**dict(zip(SETTINGS_FIELDS, values, strict=True)))).as_dict()
    windows = tuple(settings.pop("windows"))
    return settings, windows


def _agent_row(r: Any, overridden: bool, now: datetime, offline_after_s: float) -> AgentRow:
    """One row of ``_fleet_query`` (unpacked by position: this runs for every agent on every read).

    Online as the controller recorded it, unless nothing was heard for ``offline_after_s``: so an
    agent shows offline even while no controller runs to say so.
    """
    (agent_id, site, model, was_online, online_since, offline_since, last_seen, temperature_c, throttled,
     backlog_files, backlog_bytes, backlog_oldest_age_s, throughput_bps, active_uploads, errors_total,
     retries_total, bytes_uploaded_total, applied_version, software_version, backlog_eta_s, rtt, ttfb, own_cpu,
     own_rss, thermal_level,
     *a) = r  # fmt: skip
    last_seen = as_utc(last_seen)
    online = bool(was_online) and last_seen is not None and (now - last_seen).total_seconds() <= offline_after_s
    if online:
        since = as_utc(online_since)
    elif was_online:  # silent: offline since it was last heard of
        since = last_seen
    else:
        since = as_utc(offline_since) or last_seen
    assignment = None if a[0] is None else _assignment_of(a)
    return AgentRow(
        agent_id, site, model, online, since, last_seen, temperature_c, throttled, throttle_words(throttled),
        backlog_files, backlog_bytes, backlog_oldest_age_s, throughput_bps, active_uploads, errors_total,
        retries_total, bytes_uploaded_total, applied_version, assignment, overridden, thermal_level or 0,
        software_version,
        backlog_eta_s,
        rtt, ttfb, own_cpu, own_rss,
    )  # fmt: skip


def _override_targets(overrides: Iterable[OperatorOverride]) -> tuple[set[str], set[str]]:
    agents = {o.target for o in overrides if o.scope == "agent"}
    sites = {o.target for o in overrides if o.scope == "site"}
    return agents, sites


def fleet_rows(session: Session, now: datetime, offline_after_s: float) -> list[AgentRow]:
    by_agent, by_site = _override_targets(repo.list_overrides(session))
    return [
        _agent_row(r, r.id in by_agent or r.site in by_site, now, offline_after_s)
        for r in session.execute(_fleet_query())
    ]


def start_of_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def upload_totals(session: Session, since: datetime) -> UploadTotals:
    query = (
        select(
            UploadEvent.kind,
            func.count(),
            func.coalesce(func.sum(UploadEvent.original_bytes), 0),
            func.coalesce(func.sum(UploadEvent.stored_bytes), 0),
        )
        .where(UploadEvent.at >= to_db_time(since))
        .where(col(UploadEvent.kind).in_(["upload_completed", *FAILURE_KINDS]))
        .group_by(UploadEvent.kind)
    )
    by_kind: dict[str, tuple[int, int, int]] = {
        kind: (int(count), int(original), int(stored)) for kind, count, original, stored in session.exec(query)
    }
    done = by_kind.get("upload_completed", (0, 0, 0))
    return UploadTotals(
        files=done[0],
        original_bytes=done[1],
        stored_bytes=done[2],
        failures=by_kind.get("upload_failed", (0, 0, 0))[0],
        rejected=by_kind.get("file_rejected", (0, 0, 0))[0],
    )


def _alert(listed: alert_store.Listed) -> Alert:
    return Alert(
        agent_id=listed.agent_id,
        kind=listed.kind,
        message=listed.summary if listed.summary is not None else listed.alertname,
        since=as_utc(listed.started_at),
        severity=listed.severity,
        resolved_at=as_utc(listed.resolved_at),
    )


def stored_alerts(session: Session, now: datetime, agent_id: str | None = None) -> tuple[list[Alert], list[Alert]]:
    """The controller's alerts: (open, resolved within ``RECENTLY_RESOLVED``), of one agent (filtered in the
    database) or all."""
    alerts = [_alert(listed) for listed in alert_store.recent(session, now, RECENTLY_RESOLVED, agent_id)]
    return [a for a in alerts if a.resolved_at is None], [a for a in alerts if a.resolved_at is not None]


def fleet_snapshot(session: Session, now: datetime, offline_after_s: float, limits: PolicyConfig) -> FleetSnapshot:
    rows = fleet_rows(session, now, offline_after_s)
    alerts, resolved = stored_alerts(session, now)
    totals = fleet_totals(rows, upload_totals(session, start_of_day(now)), limits, alerts)
    return FleetSnapshot(rows=rows, totals=totals, alerts=alerts, at=now, resolved=resolved)


def _override_view(o: OperatorOverride) -> OverrideView:
    return OverrideView(
        scope=o.scope,
        target=o.target,
        paused=o.paused,
        windows=None if o.windows is None else list(o.windows),
        max_concurrency=o.concurrency_cap,
        bandwidth_bps=o.bandwidth_cap_bps,
        upload_now=o.upload_now,
        monthly_budget_bytes=o.monthly_budget_bytes,
        daily_cap_bytes=o.daily_cap_bytes,
        by=o.updated_by,
        at=as_utc(o.updated_at),
    )


def overrides_for(session: Session, agent_id: str | None = None, site: str | None = None) -> list[OverrideView]:
    """The overrides touching an agent (its own and its site's), or all of them."""
    rows = repo.list_overrides(session)
    if agent_id is not None or site is not None:
        rows = [
            o for o in rows if (o.scope == "agent" and o.target == agent_id) or (o.scope == "site" and o.target == site)
        ]
    return [_override_view(o) for o in rows]


def agent_detail(session: Session, agent_id: str, now: datetime, offline_after_s: float) -> AgentDetail | None:
    agent = repo.get_agent(session, agent_id)
    joined = session.execute(_fleet_query().where(col(Agent.id) == agent_id)).first()
    if agent is None or joined is None:
        return None
    overrides = overrides_for(session, agent_id=agent.id, site=agent.site or None)
    row = _agent_row(joined, bool(overrides), now, offline_after_s)
    return AgentDetail(
        row=row,
        cores=agent.cores,
        ram_bytes=agent.ram_bytes,
        software_version=agent.software_version,
        flac_encode_bps=agent.flac_encode_bps,
        simulated=agent.simulated,
        overrides=overrides,
    )


def telemetry(session: Session, agent_id: str, since: datetime, max_points: int = 600) -> list[TelemetryPoint]:
    """The agent's samples since ``since``, oldest first, thinned to ``max_points`` (columns only, no ORM)."""
    query = (
        sa_select(
            col(TelemetrySample.at),
            col(TelemetrySample.temperature_c),
            col(TelemetrySample.throughput_bps),
            col(TelemetrySample.backlog_files),
            col(TelemetrySample.backlog_bytes),
            col(TelemetrySample.active_uploads),
            col(TelemetrySample.concurrency),
            *(col(getattr(TelemetrySample, name)) for name in _OWN_MEASUREMENTS),
        )
        .where(col(TelemetrySample.agent_id) == agent_id, col(TelemetrySample.at) >= to_db_time(since))
        .order_by(col(TelemetrySample.at))
    )
    points = [
        TelemetryPoint(as_utc(at) or since, temp, tput, files, nbytes, active, conc, *own)
        for at, temp, tput, files, nbytes, active, conc, *own in session.execute(query)
    ]
    return downsample(points, max_points)


def _upload_row(e: UploadEvent) -> UploadRow:
    return UploadRow(
        at=as_utc(e.at) or datetime.min.replace(tzinfo=UTC),
        kind=e.kind,
        file=e.file,
        key=e.key,
        original_bytes=e.original_bytes,
        stored_bytes=e.stored_bytes,
        ratio=compression_ratio(e.original_bytes, e.stored_bytes),
        stored_as=e.stored_as,
        duration_s=e.duration_s,
        retries=e.retries,
        reason=e.reason,
    )


def uploads(session: Session, agent_id: str, kinds: Sequence[str], limit: int = 50) -> list[UploadRow]:
    """Newest first."""
    return [_upload_row(e) for e in repo.recent_events(session, agent_id=agent_id, kinds=kinds, limit=limit)]


def other_events(session: Session, agent_id: str, limit: int = 50) -> list[UploadRow]:
    """The agent's events that are not about one file's upload, newest first: its own (``disk_low``) and
    kinds a newer agent sent that this release does not know (shown as such: ``UploadRow.what``)."""
    query = (
        select(UploadEvent)
        .where(col(UploadEvent.agent_id) == agent_id, col(UploadEvent.kind).not_in(UPLOAD_KINDS))
        .order_by(col(UploadEvent.at).desc(), col(UploadEvent.id).desc())
        .limit(limit)
    )
    return [_upload_row(e) for e in session.exec(query)]


def assignment_history(session: Session, agent_id: str, limit: int = 50) -> list[AssignmentView]:
    """Newest first."""
    return [_assignment(h) for h in repo.assignment_history(session, agent_id, limit=limit)]


def _audit_row(e: AuditEntry) -> AuditRow:
    summary, details = describe_audit(e.action, e.detail or {})
    return AuditRow(
        at=as_utc(e.at) or datetime.min.replace(tzinfo=UTC),
        user=e.who,
        action=e.action,
        target=e.target,
        details=details,
        summary=f"{summary} {describe_target(e.target)}",
        changes=dict(e.detail or {}),
    )


def audit(session: Session, *, target: str | None = None, limit: int = 200) -> list[AuditRow]:
    """Newest first."""
    return [_audit_row(e) for e in repo.list_audit(session, target=target, limit=limit)]
