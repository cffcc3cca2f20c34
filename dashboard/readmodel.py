"""What the dashboard shows, as frozen values, and the pure rules that derive it.

``queries.py`` fills these from the controller's tables; pages, the JSON API (these are its response
models too), the SSE stream and ``/metrics`` all render them. Nothing here touches the database, the
clock or the web framework. Plain frozen dataclasses (with slots): a 2,000-agent fleet is built
every live tick, and pydantic serialises them for the API all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from controller.policy import PolicyConfig
from dashboard.formatting import human_bytes, human_rate
from fleet_plan.thermal import LEVEL_NAMES
from fleet_protocol.assignment import AssignmentSettings
from fleet_protocol.vocabulary import event_kind_label

P = TypeVar("P")


def thermal_step_name(level: int) -> str:
    """The controller's thermal step (``current_assignment.thermal_level``) in words: normal, warm, hot,
    very hot, critical. What each step changes is in the assignment's reason."""
    return LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else f"step {level}"


#: Which clause of a controller reason decides most about the agent now, most decisive first. The policy
#: joins its clauses with "; ": the sizing (always first), then heat, operator, compression, windows, share.
_OPERATOR, _WINDOW, _SHARE = ("operator ",), ("windows ", "backlog "), ("share ",)
_COMPRESSION = ("compression ",)


def _clause_rank(index: int, clause: str) -> int:
    if clause.startswith(_OPERATOR):
        return 0 if clause.endswith(": paused") else 2
    if index == 0:
        return 5  # the sizing: what is left when nothing else limits the agent
    if clause.startswith(_WINDOW):
        return 3
    if clause.startswith(_SHARE):
        return 4
    if clause.startswith(_COMPRESSION):
        return 6  # the cost model's level: it shapes the speed, it does not hold the agent back (on hover)
    return 0 if clause.endswith(": paused") else 1  # the thermal step


_PARENTHESES = re.compile(r"\s*\([^()]*\)")


def brief(clause: str) -> str:
    """A clause without its parenthesised details: "share 1.5 MB/s of 12.5 MB/s uplink (site demo: 8 of 8
    agents with backlog, weight 1)" -> "share 1.5 MB/s of 12.5 MB/s uplink"."""
    return _PARENTHESES.sub("", clause).strip() or clause


def reason_clauses(reason: str) -> list[str]:
    return [c.strip() for c in reason.split(";") if c.strip()]


def decisive_clause(reason: str) -> tuple[str, int]:
    """The clause of a controller reason that decides most about the agent right now (a pause, then heat,
    then an operator's cap, a window, the bandwidth share, else the sizing) and how many other clauses
    there are. The fleet table shows it; the whole reason is on hover and on the agent page."""
    clauses = reason_clauses(reason)
    if not clauses:
        return "", 0
    best = min(range(len(clauses)), key=lambda i: (_clause_rank(i, clauses[i]), i))
    return clauses[best], len(clauses) - 1


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
    thermal_level: int = 0  # the controller's thermal step, 0 normal … 4 critical (paused); 0 without an assignment
    software_version: str = ""  # the release the agent's birth message names ("" before its first birth)
    backlog_eta_s: float | None = None  # the agent's time to drain its backlog at its measured rate; None = unknown
    # what the agent measures of itself (None: not measured, e.g. an older agent)
    mqtt_rtt_s: float | None = None  # MQTT round trip to the broker (QoS 1 PUBLISH to PUBACK), recent median
    s3_ttfb_s: float | None = None  # S3 time to first byte of small requests, recent median
    process_cpu_percent: float | None = None  # the agent process's CPU, % of one core
    process_rss_bytes: int | None = None  # the agent process's resident memory

    @property
    def assignment_applied(self) -> bool:
        """The agent runs the assignment in force (it reported its version back)."""
        return self.assignment is not None and self.applied_version >= self.assignment.version


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as the controller stored it (``controller.alerting``): open, or resolved at ``resolved_at``."""

    agent_id: str  # "" for an alert about the central side
    kind: str  # a controller.alerting.rules.Kind value: offline, hot, critical, throttled, disk_low, …
    message: str
    since: datetime | None = None
    severity: str = ""
    resolved_at: datetime | None = None


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
    rows: Sequence[AgentRow], uploads: UploadTotals, limits: PolicyConfig, alerts: Sequence[Alert] = ()
) -> FleetTotals:
    """``alerts``: the open alerts."""
    online = [r for r in rows if r.online]
    return FleetTotals(
        agents=len(rows),
        online=len(online),
        hot=sum(1 for r in rows if is_hot(r, limits)),
        alerts=len(alerts),
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
    mqtt_rtt_s: float | None = None
    s3_ttfb_s: float | None = None
    process_cpu_percent: float | None = None
    process_rss_bytes: int | None = None


def downsample(points: Sequence[P], max_points: int) -> list[P]:
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
    kind: str  # an EventKind value, or a kind a newer agent sent that this release does not know
    file: str
    key: str
    original_bytes: int
    stored_bytes: int
    ratio: float | None  # = compression_ratio(original_bytes, stored_bytes)
    stored_as: str
    duration_s: float
    retries: int
    reason: str

    @property
    def what(self) -> str:
        """The kind as shown: ``unknown (<kind>)`` when this release does not know it."""
        return event_kind_label(self.kind)


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    user: str
    action: str  # as recorded: override.set, override.clear
    target: str  # as recorded: agent:<id>, site:<name>
    details: str  # in words (describe_audit): "pause; concurrency ≤ 1; bandwidth ≤ 1.0 MiB/s"
    summary: str = ""  # action and target in words: "set the override of agent pi-01"
    changes: dict[str, Any] = field(default_factory=dict)  # as recorded: the override's fields that were set


_AUDIT_ACTIONS = {"override.set": "set the override of", "override.clear": "cleared the override of"}


def describe_target(target: str) -> str:
    """``agent:pi-01`` -> ``agent pi-01``; ``site:barn`` -> ``site barn``."""
    scope, sep, name = target.partition(":")
    return f"{scope} {name}" if sep else target


def describe_audit(action: str, detail: Mapping[str, Any]) -> tuple[str, str]:
    """(what was done to what, the changed fields) in words, for an audit entry's action and detail."""
    summary = _AUDIT_ACTIONS.get(action, action)
    if action == "override.clear":
        return summary, "" if detail.get("existed", True) else "there was none"
    words = [_describe_field(name, value) for name, value in detail.items()]
    return summary, "; ".join(w for w in words if w)


_BUDGET_FIELDS = {"monthly_budget_bytes": "monthly budget", "daily_cap_bytes": "daily cap"}


def _describe_budget(what: str, value: Any) -> str:
    """A budget field in words; not overridden (``None``, which every form change sends) reads as nothing."""
    if value is None:
        return ""
    return f"{what} {human_bytes(value)}" if value else f"no {what}"


def _describe_field(name: str, value: Any) -> str:
    if name == "paused":
        words = {True: "pause", False: "never pause (resume)", None: "pause: the policy decides"}
        return words.get(value, f"paused {value}")
    if name == "windows":
        if value is None:
            return "windows: the policy decides"
        return "windows: " + (", ".join(str(w) for w in value) if value else "always")
    if name == "concurrency_cap":
        return "no concurrency cap" if value is None else f"concurrency ≤ {value}"
    if name == "bandwidth_cap_bps":
        if value is None:
            return "no bandwidth cap"
        return f"bandwidth ≤ {human_rate(value)}" if value else "bandwidth uncapped"
    if name == "upload_now":
        return "upload now" if value else ""
    if name == "note":
        return f"note: {value}" if value else ""
    if name in _BUDGET_FIELDS:
        return _describe_budget(_BUDGET_FIELDS[name], value)
    return f"{name.replace('_', ' ')}: {'–' if value is None else value}"


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
    monthly_budget_bytes: int | None = None
    daily_cap_bytes: int | None = None
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
            cap = self.bandwidth_bps
            parts.append(f"bandwidth ≤ {human_rate(cap)}" if cap else "bandwidth uncapped")
        if self.upload_now:
            parts.append("upload now")
        for name, value in (
            ("monthly_budget_bytes", self.monthly_budget_bytes),
            ("daily_cap_bytes", self.daily_cap_bytes),
        ):
            if value is not None:
                parts.append(_describe_budget(_BUDGET_FIELDS[name], value))
        return "; ".join(parts) or "no change"


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    rows: list[AgentRow]
    totals: FleetTotals
    alerts: list[Alert]  # open
    at: datetime
    resolved: list[Alert] = field(default_factory=list)  # resolved recently, newest first


@dataclass(frozen=True, slots=True)
class AgentDetail:
    row: AgentRow
    cores: int
    ram_bytes: int
    software_version: str
    flac_encode_bps: float
    simulated: bool
    overrides: list[OverrideView] = field(default_factory=list)
