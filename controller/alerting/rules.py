"""The alert rules (pure): a snapshot of the fleet and of the central side, the time and the thresholds in;
the set of firing alerts out, each with its labels and annotations.

Nothing here reads a clock, a database or a network: ``controller.alerting.evaluator`` builds the
snapshot (``AgentFacts``, ``CentralFacts``) and keeps what the rules need of the past (``Progress``,
clock offsets); ``controller.alerting.state`` turns two successive results into openings and resolutions.

An alert instance is identified by its labels (``fingerprint``): ``alertname``, ``severity`` and what it
is about (``agent`` and ``site``, or ``controller`` and ``thread``). A rule that raises for one agent is
reported in ``Evaluation.failed`` and the other agents are still evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from fleet_plan.thermal import ThermalLimits
from fleet_protocol import versions
from fleet_protocol.vocabulary import throttle_words

GIB = 1 << 30


class Kind(StrEnum):
    """What an alert is about; ``alertname`` is its CamelCase form (``ALERTNAMES``)."""

    OFFLINE = "offline"
    HOT = "hot"
    CRITICAL = "critical"
    THROTTLED = "throttled"
    DISK_LOW = "disk_low"
    BACKLOG_OLD = "backlog_old"
    NO_UPLOAD = "no_upload"
    UPLOAD_STUCK = "upload_stuck"
    CLOCK_SKEW = "clock_skew"
    OBJECT_STORE_ERRORS = "object_store_errors"
    OBJECT_STORE_PROBE = "object_store_probe"
    BROKER_UNREACHABLE = "broker_unreachable"
    THREAD_DOWN = "thread_down"
    VERSION_DRIFT = "version_drift"
    BUDGET_SPENT = "budget_spent"


ALERTNAMES: dict[Kind, str] = {
    Kind.OFFLINE: "EdgefleetAgentOffline",
    Kind.HOT: "EdgefleetAgentHot",
    Kind.CRITICAL: "EdgefleetAgentCritical",
    Kind.THROTTLED: "EdgefleetAgentThrottled",
    Kind.DISK_LOW: "EdgefleetAgentDiskLow",
    Kind.BACKLOG_OLD: "EdgefleetBacklogOld",
    Kind.NO_UPLOAD: "EdgefleetNoCompletedUpload",
    Kind.UPLOAD_STUCK: "EdgefleetUploadStuck",
    Kind.CLOCK_SKEW: "EdgefleetClockSkew",
    Kind.OBJECT_STORE_ERRORS: "EdgefleetObjectStoreErrors",
    Kind.OBJECT_STORE_PROBE: "EdgefleetObjectStoreProbeFailing",
    Kind.BROKER_UNREACHABLE: "EdgefleetBrokerUnreachable",
    Kind.THREAD_DOWN: "EdgefleetControllerThreadDown",
    Kind.VERSION_DRIFT: "EdgefleetVersionDrift",
    Kind.BUDGET_SPENT: "EdgefleetSiteBudgetSpent",
}
SEVERITY: dict[Kind, str] = dict.fromkeys(Kind, "warning") | {
    Kind.CRITICAL: "critical",
    Kind.DISK_LOW: "critical",
    Kind.BROKER_UNREACHABLE: "critical",
    Kind.THREAD_DOWN: "critical",
    Kind.OBJECT_STORE_PROBE: "critical",
}
#: the scope of an alert: the fleet's (evaluated by one controller) or one controller's own
FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``[alerts]`` of controller.toml, as the rules use it (docs/controller.md, "Alerts")."""

    soft_limit_c: float = ThermalLimits.soft_limit_c
    hard_limit_c: float = ThermalLimits.hard_limit_c
    offline_for_s: float = 300.0
    disk_low_fraction: float = 0.10
    disk_low_bytes: int = GIB
    backlog_max_age_h: float = 24.0
    no_upload_h: float = 24.0
    stuck_after_s: float = 1800.0
    clock_skew_s: float = 30.0
    s3_errors: int = 5
    broker_unreachable_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Progress:
    """What the evaluator remembers of an agent's running totals: since when its uploaded bytes have not
    moved, the retries then, and its recent error totals (for the object store rule)."""

    bytes_uploaded_total: int
    retries_total: int
    since: datetime
    retries_at_since: int
    errors: tuple[tuple[datetime, int], ...] = ()

    def advanced(self, *, uploaded: int, retries: int, errors: int, now: datetime, window_s: float) -> Progress:
        """The next memory after a reading (pure). Uploaded bytes that moved (or totals that went back: a
        restarted agent) start the stall over; error totals older than ``window_s`` are forgotten."""
        kept = tuple((at, n) for at, n in self.errors if (now - at).total_seconds() <= window_s and n <= errors)
        if uploaded != self.bytes_uploaded_total or retries < self.retries_total:
            return Progress(uploaded, retries, now, retries, (*kept, (now, errors)))
        return Progress(uploaded, retries, self.since, self.retries_at_since, (*kept, (now, errors)))

    def errors_increase(self) -> int:
        return self.errors[-1][1] - self.errors[0][1] if self.errors else 0


def first_progress(*, uploaded: int, retries: int, errors: int, now: datetime) -> Progress:
    return Progress(uploaded, retries, now, retries, ((now, errors),))


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """One agent as the rules see it (from the store, plus the evaluator's memory)."""

    agent_id: str
    site: str = ""
    online: bool = True
    #: since when online or offline (offline: ``offline_since``, else ``last_seen``)
    status_since: datetime | None = None
    has_telemetry: bool = True
    temperature_c: float | None = None
    throttled: int = 0
    disk_bytes: int = 0
    disk_free_bytes: int = 0
    backlog_files: int = 0
    backlog_oldest_age_s: float = 0.0
    active_uploads: int = 0
    #: the newest ``upload_completed`` event within ``no_upload_h`` (None: none that recent)
    last_completed_at: datetime | None = None
    #: when the agent was first heard of (its birth)
    known_since: datetime | None = None
    #: controller clock − agent clock, smallest of the recent (received − sent_at): None when unknown
    clock_offset_s: float | None = None
    progress: Progress | None = None
    software_version: str = ""
    #: the newest release seen among the agents and the central side (``evaluate`` fills it in)
    target_version: str = ""


@dataclass(frozen=True, slots=True)
class CentralFacts:
    """The evaluating controller's own state and the central services'."""

    controller_id: str
    #: thread name → alive
    threads: Mapping[str, bool] = field(default_factory=dict)
    mqtt_connected: bool = True
    #: when the broker connection was lost (None: connected, or never connected since start)
    mqtt_down_since: datetime | None = None
    #: the object store probe's last result: None = no probe runs; else (ok, error text)
    s3_probe: tuple[bool, str] | None = None
    #: the evaluating controller's own release (``fleet_base.__version__``): an agent behind it drifts
    version: str = ""


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """A metered site's budget month (``controller.policy.budget``): bytes used (billed) of its budget."""

    site: str
    budget_bytes: int
    used_bytes: int
    #: the day the next budget month starts (local to the site)
    resumes_on: date


@dataclass(frozen=True, slots=True)
class Firing:
    kind: Kind
    labels: Mapping[str, str]
    summary: str
    description: str = ""
    #: when the condition began, if known (else the evaluation that first saw it)
    since: datetime | None = None
    #: ``FLEET`` or the controller id whose own state this is about
    scope: str = FLEET

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "description": self.description or self.summary}


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits identifying an alert instance by its labels (stable across processes)."""
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _agent_alert(kind: Kind, facts: AgentFacts, summary: str, since: datetime | None = None) -> Firing:
    labels = {"alertname": ALERTNAMES[kind], "severity": SEVERITY[kind], "agent": facts.agent_id, "site": facts.site}
    return Firing(kind, labels, summary, since=since)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def offline(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    if a.online:
        return None
    if a.status_since is not None and (now - a.status_since).total_seconds() < t.offline_for_s:
        return None
    return _agent_alert(Kind.OFFLINE, a, f"{a.agent_id} is offline", a.status_since)


def heat(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    temp = a.temperature_c
    if temp is None or temp < t.soft_limit_c:
        return None
    if temp >= t.hard_limit_c:
        return _agent_alert(Kind.CRITICAL, a, f"{a.agent_id} {temp:.1f} °C ≥ {t.hard_limit_c:g} °C hard limit")
    return _agent_alert(Kind.HOT, a, f"{a.agent_id} {temp:.1f} °C ≥ {t.soft_limit_c:g} °C soft limit")


def throttled(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    words = throttle_words(a.throttled)
    return _agent_alert(Kind.THROTTLED, a, f"{a.agent_id}: {', '.join(words)}") if words else None


def disk_low(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    if not a.has_telemetry or a.disk_bytes <= 0:
        return None
    floor = max(t.disk_low_fraction * a.disk_bytes, float(min(t.disk_low_bytes, a.disk_bytes)))
    if a.disk_free_bytes >= floor:
        return None
    free = a.disk_free_bytes / a.disk_bytes
    return _agent_alert(Kind.DISK_LOW, a, f"{a.agent_id} disk {free:.0%} free ({a.disk_free_bytes / GIB:.1f} GiB)")


def backlog_old(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    if a.backlog_files <= 0 or a.backlog_oldest_age_s < t.backlog_max_age_h * 3600:
        return None
    return _agent_alert(Kind.BACKLOG_OLD, a, f"{a.agent_id} oldest waiting file {_hours(a.backlog_oldest_age_s)} old")


def no_upload(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    last = a.last_completed_at or a.known_since
    if a.backlog_files <= 0 or last is None or (now - last).total_seconds() < t.no_upload_h * 3600:
        return None
    return _agent_alert(Kind.NO_UPLOAD, a, f"{a.agent_id}: no upload completed in {t.no_upload_h:g} h")


def upload_stuck(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    p = a.progress
    if p is None or (a.active_uploads <= 0 and a.backlog_files <= 0) or p.retries_total <= p.retries_at_since:
        return None
    stalled = (now - p.since).total_seconds()
    if stalled < t.stuck_after_s:
        return None
    retries = p.retries_total - p.retries_at_since
    return _agent_alert(Kind.UPLOAD_STUCK, a, f"{a.agent_id}: {retries} retries, no progress for {_hours(stalled)}")


def clock_skew(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    offset = a.clock_offset_s
    if offset is None or abs(offset) < t.clock_skew_s:
        return None
    way = "behind" if offset > 0 else "ahead of"
    return _agent_alert(Kind.CLOCK_SKEW, a, f"{a.agent_id} clock {abs(offset):.0f} s {way} the controller's")


def object_store_errors(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    if a.progress is None or a.progress.errors_increase() < t.s3_errors:
        return None
    return _agent_alert(
        Kind.OBJECT_STORE_ERRORS, a, f"{a.agent_id}: {a.progress.errors_increase()} upload errors recently"
    )


def version_drift(a: AgentFacts, now: datetime, t: Thresholds) -> Firing | None:
    """The agent runs another release than the newest one seen (``fleet_protocol.versions.version_drift``)."""
    drift = versions.version_drift({a.agent_id: a.software_version}, a.target_version)
    if a.agent_id not in drift.behind:
        return None
    return _agent_alert(Kind.VERSION_DRIFT, a, f"{a.agent_id} runs {a.software_version}, not {drift.target}")


AgentRule = Callable[[AgentFacts, datetime, Thresholds], Firing | None]
#: rules that still mean something for an agent that is offline (its other readings are stale)
WHEN_OFFLINE: tuple[AgentRule, ...] = (offline,)
WHEN_ONLINE: tuple[AgentRule, ...] = (
    heat,
    throttled,
    disk_low,
    backlog_old,
    no_upload,
    upload_stuck,
    clock_skew,
    object_store_errors,
    version_drift,
)


def agent_alerts(a: AgentFacts, now: datetime, t: Thresholds) -> list[Firing]:
    rules = WHEN_ONLINE if a.online else WHEN_OFFLINE
    return [f for f in (rule(a, now, t) for rule in rules) if f is not None]


def central_alerts(c: CentralFacts, now: datetime, t: Thresholds) -> list[Firing]:
    """The evaluating controller's own alerts (scope: its id) and the object store probe's (fleet)."""
    out: list[Firing] = []
    mine = {"controller": c.controller_id}
    for name, alive in sorted(c.threads.items()):
        if not alive:
            labels = _labels(Kind.THREAD_DOWN, mine | {"thread": name})
            out.append(Firing(Kind.THREAD_DOWN, labels, f"controller {c.controller_id}: thread {name} is not running",
                              scope=c.controller_id))  # fmt: skip
    down = c.mqtt_down_since
    if not c.mqtt_connected and (down is None or (now - down).total_seconds() >= t.broker_unreachable_s):
        summary = f"controller {c.controller_id} cannot reach the MQTT broker"
        out.append(Firing(Kind.BROKER_UNREACHABLE, _labels(Kind.BROKER_UNREACHABLE, mine), summary, since=down,
                          scope=c.controller_id))  # fmt: skip
    if c.s3_probe is not None and not c.s3_probe[0]:
        summary = f"object store probe failing: {c.s3_probe[1][:200]}"
        out.append(Firing(Kind.OBJECT_STORE_PROBE, _labels(Kind.OBJECT_STORE_PROBE, {}), summary))
    return out


def budget_spent(s: SiteFacts, now: datetime, t: Thresholds) -> Firing | None:
    """A metered site spent its monthly budget: its uploads are held until the next budget month."""
    if s.budget_bytes <= 0 or s.used_bytes < s.budget_bytes:
        return None
    where = f"site {s.site}" if s.site else "the site without a name"
    summary = (
        f"monthly budget of {where} spent: {s.used_bytes / 1e9:.2f} GB of {s.budget_bytes / 1e9:.2f} GB; "
        f"uploads held until {s.resumes_on.isoformat()}"
    )
    return Firing(Kind.BUDGET_SPENT, _labels(Kind.BUDGET_SPENT, {"site": s.site}), summary)


def _labels(kind: Kind, extra: Mapping[str, str]) -> dict[str, str]:
    return {"alertname": ALERTNAMES[kind], "severity": SEVERITY[kind], **extra}


@dataclass(frozen=True, slots=True)
class Evaluation:
    firing: list[Firing]
    #: (agent id, error) of agents whose rules raised: the others were evaluated all the same
    failed: list[tuple[str, str]] = field(default_factory=list)


def evaluate(
    fleet: Sequence[AgentFacts] | None,
    central: CentralFacts,
    now: datetime,
    thresholds: Thresholds,
    sites: Sequence[SiteFacts] = (),
) -> Evaluation:
    """Every alert firing now. ``fleet`` None: this controller does not evaluate the fleet's rules (another
    one does), only its own; ``sites``: the metered sites (fleet rules too)."""
    firing: list[Firing] = []
    failed: list[tuple[str, str]] = []
    target = versions.newest([central.version, *(a.software_version for a in fleet or ())])
    for facts in fleet or ():
        try:
            facts = replace(facts, target_version=target)
            firing.extend(agent_alerts(facts, now, thresholds))
        except Exception as exc:  # one bad row must not hide the others' alerts
            failed.append((facts.agent_id, f"{type(exc).__name__}: {exc}"[:300]))
    if fleet is not None:
        firing.extend(f for f in (budget_spent(s, now, thresholds) for s in sites) if f is not None)
    central_firing = central_alerts(central, now, thresholds)
    if fleet is None:
        central_firing = [f for f in central_firing if f.scope != FLEET]
    return Evaluation(firing + central_firing, failed)


def clock_offset(observations: Sequence[float]) -> float | None:
    """Controller clock − agent clock from recent (received − sent_at) values: the smallest (transit only adds
    delay, so the smallest is the closest to the clocks' difference)."""
    return min(observations) if observations else None
