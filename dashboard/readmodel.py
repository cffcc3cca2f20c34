"""What the dashboard shows, as frozen values, and the pure rules that derive it.

``queries.py`` fills these from the controller's tables; pages, the JSON API (these are its response
models too), the SSE stream and ``/metrics`` all render them. Nothing here touches the database, the
clock or the web framework. Plain frozen dataclasses (with slots): a 2,000-agent fleet is built
every live tick, and pydantic serialises them for the API all the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.policy import PolicyConfig
from fleet_protocol.assignment import AssignmentSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentView(AssignmentSettings):
    """The assignment in force: its settings (the value itself, so the API shows them as fields of their own)
    and its version, reason and time."""

    version: int
    reason: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str
    site: str
    model: str
    online: bool
    status_since: datetime | None
    last_seen: datetime | None
    temperature_c: float | None
    throttled: int
    throttle_flags: list[str]  # = fleet_protocol.vocabulary.throttle_words(throttled): the firmware's words
    backlog_files: int
    backlog_bytes: int
    backlog_oldest_age_s: float
    throughput_bps: float
    active_uploads: int
    errors_total: int
    retries_total: int
    bytes_uploaded_total: int
    applied_version: int  # the assignment version the agent reports it applies
    assignment: AssignmentView | None
    overridden: bool = False

    @property
    def assignment_applied(self) -> bool:
        """The agent runs the assignment in force (it reported its version back)."""
        return self.assignment is not None and self.applied_version >= self.assignment.version


class AlertKind(StrEnum):
    OFFLINE = "offline"
    HOT = "hot"  # at or above the soft limit
    CRITICAL = "critical"  # at or above the hard limit
    THROTTLED = "throttled"  # firmware reports throttling or under-voltage now


@dataclass(frozen=True, slots=True)
class Alert:
    agent_id: str
    kind: AlertKind
    message: str
    since: datetime | None = None


def alerts_for(row: AgentRow, limits: PolicyConfig) -> list[Alert]:
    out: list[Alert] = []
    if not row.online:
        out.append(
            Alert(
                agent_id=row.agent_id,
                kind=AlertKind.OFFLINE,
                message=f"{row.agent_id} is offline",
                since=row.status_since,
            )
        )
        return out  # stale temperatures of an offline agent are not news
    temp = row.temperature_c
    if temp is not None and temp >= limits.hard_limit_c:
        out.append(
            Alert(
                agent_id=row.agent_id,
                kind=AlertKind.CRITICAL,
                message=f"{row.agent_id} {temp:.1f} °C ≥ {limits.hard_limit_c:g} °C hard limit",
            )
        )
    elif temp is not None and temp >= limits.soft_limit_c:
        out.append(
            Alert(
                agent_id=row.agent_id,
                kind=AlertKind.HOT,
                message=f"{row.agent_id} {temp:.1f} °C ≥ {limits.soft_limit_c:g} °C soft limit",
            )
        )
    flags = row.throttle_flags
    if flags:
        out.append(
            Alert(agent_id=row.agent_id, kind=AlertKind.THROTTLED, message=f"{row.agent_id}: {', '.join(flags)}")
        )
    return out


def fleet_alerts(rows: Iterable[AgentRow], limits: PolicyConfig) -> list[Alert]:
    return [alert for row in rows for alert in alerts_for(row, limits)]


def is_hot(row: AgentRow, limits: PolicyConfig) -> bool:
    return row.online and row.temperature_c is not None and row.temperature_c >= limits.soft_limit_c


@dataclass(frozen=True, slots=True)
class UploadTotals:
    """Completed uploads and failures since a moment (the start of today, UTC)."""

    files: int = 0
    original_bytes: int = 0
    stored_bytes: int = 0
    failures: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class FleetTotals:
    agents: int
    online: int
    hot: int
    alerts: int
    throughput_bps: float
    backlog_files: int
    backlog_bytes: int
    uploaded_today_files: int
    uploaded_today_bytes: int
    saved_today_bytes: int
    failures_today: int
    rejected_today: int


def fleet_totals(
    rows: Sequence[AgentRow], uploads: UploadTotals, limits: PolicyConfig, alerts: Sequence[Alert] | None = None
) -> FleetTotals:
    """``alerts``: ``fleet_alerts(rows, limits)`` when the caller has them already."""
    online = [r for r in rows if r.online]
    return FleetTotals(
        agents=len(rows),
        online=len(online),
        hot=sum(1 for r in rows if is_hot(r, limits)),
        alerts=len(fleet_alerts(rows, limits) if alerts is None else alerts),
        throughput_bps=sum(r.throughput_bps for r in online),
        backlog_files=sum(r.backlog_files for r in rows),
        backlog_bytes=sum(r.backlog_bytes for r in rows),
        uploaded_today_files=uploads.files,
        uploaded_today_bytes=uploads.original_bytes,
        saved_today_bytes=max(0, uploads.original_bytes - uploads.stored_bytes),
        failures_today=uploads.failures,
        rejected_today=uploads.rejected,
    )


@dataclass(frozen=True, slots=True)
class TelemetryPoint:
    at: datetime
    temperature_c: float | None
    throughput_bps: float
    backlog_files: int
    backlog_bytes: int
    active_uploads: int
    concurrency: int | None  # of the assignment in force at the time


def downsample(points: Sequence[TelemetryPoint], max_points: int) -> list[TelemetryPoint]:
    """At most ``max_points`` points, evenly strided, always keeping the newest (pure, order kept)."""
    if max_points <= 0:
        return []
    if len(points) <= max_points:
        return list(points)
    stride = len(points) / max_points
    picked = [points[int(i * stride)] for i in range(max_points - 1)]
    picked.append(points[-1])
    return picked


def compression_ratio(original_bytes: int, stored_bytes: int) -> float | None:
    """stored / original (lower is better); None when unknown."""
    if original_bytes <= 0 or stored_bytes <= 0:
        return None
    return stored_bytes / original_bytes


@dataclass(frozen=True, slots=True)
class UploadRow:
    at: datetime
    kind: str  # an EventKind value
    file: str
    key: str
    original_bytes: int
    stored_bytes: int
    ratio: float | None  # = compression_ratio(original_bytes, stored_bytes)
    stored_as: str
    duration_s: float
    retries: int
    reason: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    user: str
    action: str
    target: str
    details: str


@dataclass(frozen=True, slots=True)
class OverrideView:
    """The operator's standing override for one agent or site (None fields = not overridden)."""

    scope: str  # "agent" | "site"
    target: str
    paused: bool | None = None
    windows: list[str] | None = None
    max_concurrency: int | None = None
    bandwidth_bps: int | None = None
    upload_now: bool = False
    by: str = ""
    at: datetime | None = None

    def describe(self) -> str:
        parts: list[str] = []
        if self.paused is not None:
            parts.append("paused" if self.paused else "resumed")
        if self.windows is not None:
            parts.append("windows " + (", ".join(self.windows) if self.windows else "always"))
        if self.max_concurrency is not None:
            parts.append(f"concurrency ≤ {self.max_concurrency}")
        if self.bandwidth_bps is not None:
            parts.append(f"bandwidth ≤ {self.bandwidth_bps} B/s" if self.bandwidth_bps else "bandwidth uncapped")
        if self.upload_now:
            parts.append("upload now")
        return "; ".join(parts) or "no change"


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    rows: list[AgentRow]
    totals: FleetTotals
    alerts: list[Alert]
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentDetail:
    row: AgentRow
    cores: int
    ram_bytes: int
    software_version: str
    flac_encode_bps: float
    simulated: bool
    overrides: list[OverrideView] = field(default_factory=list)
