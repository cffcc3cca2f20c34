"""Reads and operator writes on the controller's tables; functions take a ``Session`` (writes commit).

The dashboard uses ``set_override``, ``clear_override``, ``list_overrides`` and ``list_audit`` to
change what the policy sees; the controller picks overrides up on its next tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from controller.store.database import as_utc, create_all, make_engine, to_db_time
from controller.store.models import (
    OVERRIDE_SCOPES,
    Agent,
    AssignmentHistory,
    AuditEntry,
    CurrentAssignment,
    DeadLetter,
    IngestReject,
    OperatorOverride,
    TelemetrySample,
    UploadEvent,
)
from fleet_protocol.windows import is_valid_window

__all__ = [
    "OverrideTarget",
    "as_utc",
    "assignment_history",
    "clear_override",
    "create_all",
    "current_assignments",
    "dead_letters",
    "get_agent",
    "list_agents",
    "list_audit",
    "list_overrides",
    "make_engine",
    "recent_events",
    "reject_counts",
    "set_override",
    "telemetry_history",
]

_UNSET: Any = object()


@dataclass(frozen=True)
class OverrideTarget:
    scope: str
    target: str

    @classmethod
    def of(cls, agent_id: str | None, site: str | None) -> OverrideTarget:
        if (agent_id is None) == (site is None):
            raise ValueError("give exactly one of agent_id or site")
        return cls("agent", agent_id) if agent_id is not None else cls("site", site or "")

    def __post_init__(self) -> None:
        if self.scope not in OVERRIDE_SCOPES:
            raise ValueError(f"override scope must be one of {OVERRIDE_SCOPES}, got {self.scope!r}")

    def __str__(self) -> str:
        return f"{self.scope}:{self.target}"


def _now(now: datetime | None) -> datetime:
    return to_db_time(now or datetime.now(UTC))


def _audit(session: Session, *, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None:
    session.add(AuditEntry(at=at, who=who, action=action, target=target, detail=detail))


def set_override(
    session: Session,
    *,
    who: str,
    agent_id: str | None = None,
    site: str | None = None,
    paused: bool | None = _UNSET,
    windows: Sequence[str] | None = _UNSET,
    concurrency_cap: int | None = _UNSET,
    bandwidth_cap_bps: int | None = _UNSET,
    upload_now: bool = _UNSET,
    note: str = _UNSET,
    monthly_budget_bytes: int | None = _UNSET,
    daily_cap_bytes: int | None = _UNSET,
    now: datetime | None = None,
) -> OperatorOverride:
    """Create or update the override of one agent or site; only the fields passed change. Audited.

    ``None`` clears a single field (e.g. ``paused=None`` → no longer paused by the operator). The fields are those
    of ``OverrideBase``.
    """
    target = OverrideTarget.of(agent_id, site)
    at = _now(now)
    changes = _checked_changes(
        paused=paused,
        windows=windows,
        concurrency_cap=concurrency_cap,
        bandwidth_cap_bps=bandwidth_cap_bps,
        upload_now=upload_now,
        note=note,
        monthly_budget_bytes=monthly_budget_bytes,
        daily_cap_bytes=daily_cap_bytes,
    )
    if target.scope != "site" and changes.get("monthly_budget_bytes") is not None:
        raise ValueError("a monthly data budget belongs to a site, not to one agent")
    row = _find_override(session, target) or OperatorOverride(
        scope=target.scope, target=target.target, created_by=who, created_at=at, updated_by=who, updated_at=at
    )
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_by, row.updated_at = who, at
    session.add(row)
    _audit(session, who=who, action="override.set", target=str(target), detail=changes, at=at)
    session.commit()
    session.refresh(row)
    return row


def _checked_changes(**given: Any) -> dict[str, Any]:
    """The fields given (not ``_UNSET``), checked in order; ``ValueError`` names the first that is invalid."""
    changes = {name: value for name, value in given.items() if value is not _UNSET}
    windows = changes.get("windows")
    if windows is not None:
        bad = [w for w in windows if not is_valid_window(w)]
        if bad:
            raise ValueError(f"invalid window(s) {bad}: use 'HH:MM-HH:MM'")
        changes["windows"] = list(windows)
    for cap in ("concurrency_cap", "bandwidth_cap_bps", "monthly_budget_bytes", "daily_cap_bytes"):
        if (changes.get(cap) or 0) < 0:
            raise ValueError(f"{cap} must be ≥ 0")
    if "upload_now" in changes:
        changes["upload_now"] = bool(changes["upload_now"])
    return changes


def _find_override(session: Session, target: OverrideTarget) -> OperatorOverride | None:
    return session.exec(
        select(OperatorOverride).where(OperatorOverride.scope == target.scope, OperatorOverride.target == target.target)
    ).first()


def clear_override(
    session: Session, *, who: str, agent_id: str | None = None, site: str | None = None, now: datetime | None = None
) -> bool:
    """Remove every override of one agent or site; ``False`` if there was none. Audited either way."""
    target = OverrideTarget.of(agent_id, site)
    row = _find_override(session, target)
    if row is not None:
        session.delete(row)
    _audit(
        session, who=who, action="override.clear", target=str(target), detail={"existed": row is not None}, at=_now(now)
    )
    session.commit()
    return row is not None


def list_overrides(session: Session) -> list[OperatorOverride]:
    return list(session.exec(select(OperatorOverride).order_by(OperatorOverride.scope, OperatorOverride.target)))


def list_audit(
    session: Session, *, limit: int = 100, target: str | None = None, who: str | None = None
) -> list[AuditEntry]:
    """Newest first; ``target`` like ``agent:pi-01`` or ``site:garden``."""
    query = select(AuditEntry)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if who is not None:
        query = query.where(AuditEntry.who == who)
    return list(session.exec(query.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(limit)))


# --- reads --------------------------------------------------------------------------------------


def list_agents(session: Session, *, site: str | None = None) -> list[Agent]:
    query = select(Agent)
    if site is not None:
        query = query.where(Agent.site == site)
    return list(session.exec(query.order_by(Agent.id)))


def get_agent(session: Session, agent_id: str) -> Agent | None:
    return session.get(Agent, agent_id)


def telemetry_history(
    session: Session, agent_id: str, *, since: datetime | None = None, limit: int = 2000
) -> list[TelemetrySample]:
    """Oldest first, the newest ``limit`` samples (after ``since``)."""
    query = select(TelemetrySample).where(TelemetrySample.agent_id == agent_id)
    if since is not None:
        query = query.where(TelemetrySample.at >= to_db_time(since))
    rows = list(session.exec(query.order_by(col(TelemetrySample.at).desc()).limit(limit)))
    rows.reverse()
    return rows


def recent_events(
    session: Session, *, agent_id: str | None = None, kinds: Sequence[str] | None = None, limit: int = 100
) -> list[UploadEvent]:
    """Newest first."""
    query = select(UploadEvent)
    if agent_id is not None:
        query = query.where(UploadEvent.agent_id == agent_id)
    if kinds:
        query = query.where(col(UploadEvent.kind).in_(list(kinds)))
    return list(session.exec(query.order_by(col(UploadEvent.at).desc(), col(UploadEvent.id).desc()).limit(limit)))


def current_assignments(session: Session) -> dict[str, CurrentAssignment]:
    return {row.agent_id: row for row in session.exec(select(CurrentAssignment))}


def assignment_history(session: Session, agent_id: str, *, limit: int = 100) -> list[AssignmentHistory]:
    """Newest first."""
    return list(
        session.exec(
            select(AssignmentHistory)
            .where(AssignmentHistory.agent_id == agent_id)
            .order_by(col(AssignmentHistory.version).desc())
            .limit(limit)
        )
    )


def reject_counts(session: Session) -> dict[str, int]:
    return {row.kind: row.count for row in session.exec(select(IngestReject))}


def dead_letters(session: Session, *, limit: int = 100) -> list[DeadLetter]:
    """Messages that could not be stored, newest first."""
    return list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit)))
