"""The controller's alert evaluation: the snapshot from the store and from this controller's memory, the pure
rules, the changes into the store with their notifications.

Which alerts a controller evaluates: its own (threads, broker connection) always; the fleet's only while it
is the leader, the first by id among the live controllers (their heartbeats, ``controller_instance``). So
two controllers never both open the same fleet alert, and when the leader stops, the next one takes over.

What the rules need of the past is kept here, in memory: each agent's running totals since they last moved
(``Progress``, for stuck uploads and object store errors) and its last few clock offsets (received −
``sent_at``, fed by the ingest thread through ``observe_offset``). A restarted controller starts these
windows over.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from controller.alerting import store
from controller.alerting.rules import (
    FLEET,
    AgentFacts,
    CentralFacts,
    Evaluation,
    Progress,
    SiteFacts,
    Thresholds,
    clock_offset,
    evaluate,
    first_progress,
)
from controller.alerting.state import Changes, reconcile
from controller.config import AlertsSection
from controller.policy import PolicyConfig
from controller.store.database import as_utc
from controller.store.instances import heard_until
from controller.store.models import Agent
from controller.store.tables import column
from controller.store.usage import metered_usage

log = logging.getLogger(__name__)

#: recent clock offsets kept per agent
OFFSETS_KEPT = 5

_AGENT_FIELDS = (
    "id", "site", "online", "online_since", "offline_since", "last_seen", "telemetry_at", "birth_at",
    "temperature_c", "throttled", "disk_bytes", "disk_free_bytes", "backlog_files", "backlog_oldest_age_s",
    "active_uploads", "bytes_uploaded_total", "retries_total", "errors_total", "software_version",
)  # fmt: skip


def thresholds(config: AlertsSection, policy: PolicyConfig) -> Thresholds:
    """The rules' thresholds: ``[alerts]`` (same names), and the policy's thermal limits (one meaning of "hot")."""
    from_config = {f.name: getattr(config, f.name) for f in fields(Thresholds) if f.name in AlertsSection.model_fields}
    return Thresholds(soft_limit_c=policy.soft_limit_c, hard_limit_c=policy.hard_limit_c, **from_config)


@dataclass(frozen=True)
class Round:
    evaluation: Evaluation
    changes: Changes
    leader: bool


class AlertEvaluator:
    def __init__(
        self,
        engine: Engine,
        config: AlertsSection,
        policy: PolicyConfig,
        *,
        controller_id: str,
        central: Callable[[datetime], CentralFacts],
        heartbeat_ttl_s: float,
    ) -> None:
        self.engine, self.config, self.policy = engine, config, policy
        self.controller_id = controller_id
        self.central = central
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.thresholds = thresholds(config, policy)
        self.outbox = store.Outbox(tuple(w.url for w in config.webhooks), config.external_url)
        self.progress: dict[str, Progress] = {}
        self.offsets: dict[str, deque[float]] = {}
        self.failed_agents = 0
        self.rounds = 0
        self.leader = False

    def observe_offset(self, agent_id: str, offset_s: float) -> None:
        """Received − ``sent_at`` of one message (any thread; cheap)."""
        kept = self.offsets.get(agent_id)
        if kept is None:
            kept = self.offsets[agent_id] = deque(maxlen=OFFSETS_KEPT)
        kept.append(offset_s)

    def scopes(self) -> set[str]:
        return {self.controller_id, FLEET} if self.leader else {self.controller_id}

    def run_once(self, now: datetime) -> Round:
        with Session(self.engine) as session:
            live = store.live_controllers(session, now, self.heartbeat_ttl_s)
            self.leader = not live or min([*live, self.controller_id]) == self.controller_id
            fleet = self.fleet_facts(session, now, live) if self.leader else None
            sites = self.site_facts(session, now) if self.leader else []
            evaluation = evaluate(fleet, self.central(now), now, self.thresholds, sites)
            for agent_id, error in evaluation.failed:
                log.error("alert rules failed for agent %s (the others were evaluated): %s", agent_id, error)
            self.failed_agents += len(evaluation.failed)
            changes = reconcile(
                store.open_alerts(session), evaluation.firing, self.scopes(), now, self.config.repeat_interval_s
            )
            store.apply(session, changes, now, self.outbox)
        self.rounds += 1
        for firing in changes.opened:
            log.warning("alert: %s (%s)", firing.summary, firing.labels["alertname"])
        if changes.resolved:
            log.info("alerts resolved: %d", len(changes.resolved))
        return Round(evaluation, changes, self.leader)

    def fleet_facts(self, session: Session, now: datetime, live: Sequence[str] = ()) -> list[AgentFacts]:
        """Every agent's facts. An agent is heard if something of it was stored within ``offline_after_s`` of the
        ``live`` controllers' ingest watermark (as the ticker marks agents offline), not of ``now``: an ingest
        that is behind does not make the fleet look silent."""
        completed = store.last_completed(session, now - timedelta(hours=self.config.no_upload_h))
        until = heard_until(session, live, now)
        rows = session.execute(select(*(column(getattr(Agent, name)) for name in _AGENT_FIELDS))).all()
        facts = []
        for row in rows:
            try:
                facts.append(self._facts(row, completed, now, until))
            except Exception as exc:  # one bad row must not stop the others' alerts
                self.failed_agents += 1
                log.error("alert facts failed for agent %s: %s", row[0], exc)
        self._forget_missing(f.agent_id for f in facts)
        return facts

    def site_facts(self, session: Session, now: datetime) -> list[SiteFacts]:
        """The metered sites' months (none metered: no read)."""
        if not any(b.monthly_bytes > 0 for b in self.policy.site_budgets.values()):
            return []
        plans = metered_usage(session, self.policy, now).sites
        return [
            SiteFacts(site, plan.budget.monthly_bytes, plan.used_month, plan.month.end.date())
            for site, plan in plans.items()
            if plan.budget.monthly_bytes > 0
        ]

    def _facts(self, row: Any, completed: dict[str, datetime], now: datetime, heard_until: datetime) -> AgentFacts:
        r = dict(zip(_AGENT_FIELDS, row, strict=True))
        agent_id: str = r["id"]
        last_seen = as_utc(r["last_seen"])
        heard = last_seen is not None and (heard_until - last_seen).total_seconds() <= self.policy.offline_after_s
        online = bool(r["online"]) and heard
        since = as_utc(r["online_since"]) if online else (last_seen if r["online"] else as_utc(r["offline_since"]))
        progress = self._progress(agent_id, r, now)
        offsets = self.offsets.get(agent_id)
        return AgentFacts(
            agent_id=agent_id,
            site=r["site"] or "",
            online=online,
            status_since=since or last_seen,
            has_telemetry=r["telemetry_at"] is not None,
            temperature_c=r["temperature_c"],
            throttled=r["throttled"] or 0,
            disk_bytes=r["disk_bytes"] or 0,
            disk_free_bytes=r["disk_free_bytes"] or 0,
            backlog_files=r["backlog_files"] or 0,
            backlog_oldest_age_s=r["backlog_oldest_age_s"] or 0.0,
            active_uploads=r["active_uploads"] or 0,
            last_completed_at=completed.get(agent_id),
            known_since=as_utc(r["birth_at"]) or last_seen,
            clock_offset_s=clock_offset(list(offsets)) if offsets else None,
            progress=progress,
            software_version=r["software_version"] or "",
        )

    def _progress(self, agent_id: str, r: dict[str, Any], now: datetime) -> Progress:
        uploaded, retries, errors = r["bytes_uploaded_total"] or 0, r["retries_total"] or 0, r["errors_total"] or 0
        before = self.progress.get(agent_id)
        if before is None:
            after = first_progress(uploaded=uploaded, retries=retries, errors=errors, now=now)
        else:
            after = before.advanced(
                uploaded=uploaded, retries=retries, errors=errors, now=now, window_s=self.config.s3_errors_window_s
            )
        self.progress[agent_id] = after
        return after

    def _forget_missing(self, present: Iterable[str]) -> None:
        keep = set(present)
        for gone in [a for a in self.progress if a not in keep]:
            del self.progress[gone]
