"""Writing agents, telemetry, events and assignments into the controller's tables, as the controller would.

The dashboard only reads these tables; its tests (API, browser, benchmark) fill them with this. ``put_agents``
also runs the controller's alert evaluation over what it wrote (``evaluate_alerts``), as a running controller
would on its next round: the dashboard lists the alerts the controller stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controller.alerting.evaluator import AlertEvaluator
from controller.alerting.rules import CentralFacts
from controller.config import AlertsSection
from controller.policy import PolicyConfig
from controller.store.models import Agent, AssignmentHistory, CurrentAssignment, TelemetrySample, UploadEvent
from dashboard.auth import hash_password
from fleet_base import __version__

MiB = 1024 * 1024
PASSWORDS = {"olga": "operator-password", "vic": "viewer-password"}
# Cheap bcrypt rounds: the tests log in often.
USERS = [
    {"name": "olga", "password_hash": hash_password(PASSWORDS["olga"], rounds=4), "role": "operator"},
    {"name": "vic", "password_hash": hash_password(PASSWORDS["vic"], rounds=4), "role": "viewer"},
]


def config_data(database_url: str, **extra: object) -> dict[str, object]:
    return {"database_url": database_url, "secret_key": "test-secret-key-0123456789", "users": USERS, **extra}


@dataclass
class AgentSpec:
    agent_id: str
    site: str = "garden"
    model: str = "Raspberry Pi 4 Model B Rev 1.4"
    online: bool = True
    temperature_c: float | None = 55.0
    throttled: int = 0
    backlog_files: int = 3
    backlog_bytes: int = 300 * MiB
    throughput_bps: float = 2.0 * MiB
    active_uploads: int = 2
    concurrency: int = 2
    paused: bool = False
    reason: str = "normal: 4 cores, 55.0 °C"
    thermal_level: int = 0  # the controller's thermal step (current_assignment.thermal_level)
    backlog_eta_s: float | None = None  # the agent's time to drain; None = unknown
    extra: Mapping[str, object] = field(default_factory=dict)


def put_agent(session: Session, spec: AgentSpec, now: datetime) -> None:
    agent = session.get(Agent, spec.agent_id) or Agent(id=spec.agent_id)
    agent.site, agent.model, agent.cores, agent.ram_bytes = spec.site, spec.model, 4, 4096 * MiB
    agent.software_version, agent.flac_encode_bps = __version__, 40.0 * MiB
    if spec.online and not agent.online:
        agent.online_since = now - timedelta(minutes=5)
    if not spec.online and agent.online:
        agent.offline_since = now
    agent.online, agent.last_seen, agent.telemetry_at = spec.online, now, now
    agent.temperature_c, agent.throttled = spec.temperature_c, spec.throttled
    agent.backlog_files, agent.backlog_bytes, agent.backlog_oldest_age_s = spec.backlog_files, spec.backlog_bytes, 600.0
    agent.throughput_bps, agent.active_uploads = spec.throughput_bps, spec.active_uploads
    agent.backlog_eta_s = spec.backlog_eta_s
    agent.bytes_uploaded_total, agent.retries_total, agent.errors_total = 10 * MiB, 1, 0
    current = session.get(CurrentAssignment, spec.agent_id)
    changed = (
        current is None
        or current.concurrency != spec.concurrency
        or current.paused != spec.paused
        or current.reason != spec.reason
        or current.thermal_level != spec.thermal_level
    )
    version = 1 if current is None else current.version + int(changed)
    agent.assignment_version = version  # the agent applies what it was given
    if changed:
        values: dict[str, Any] = dict(  # noqa: C408
            agent_id=spec.agent_id,
            version=version,
            concurrency=spec.concurrency,
            part_size=8 * MiB,
            windows=[],
            bandwidth_bps=0,
            compression_level=5,
            paused=spec.paused,
            upload_now=False,
            reason=spec.reason,
            at=now,
        )
        if current is None:
            session.add(CurrentAssignment(**values, thermal_level=spec.thermal_level))
        else:
            for name, value in values.items():
                setattr(current, name, value)
            current.thermal_level = spec.thermal_level
            session.add(current)
        session.add(AssignmentHistory(**values))
    for name, value in spec.extra.items():
        setattr(agent, name, value)
    session.add(agent)
    session.add(
        TelemetrySample(
            agent_id=spec.agent_id,
            at=now,
            received_at=now,
            temperature_c=spec.temperature_c,
            throttled=spec.throttled,
            backlog_files=spec.backlog_files,
            backlog_bytes=spec.backlog_bytes,
            throughput_bps=spec.throughput_bps,
            active_uploads=spec.active_uploads,
            assignment_version=version,
            concurrency=spec.concurrency,
        )
    )


def put_agents(engine: Engine, specs: list[AgentSpec], now: datetime | None = None, *, alerts: bool = True) -> None:
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        for spec in specs:
            put_agent(session, spec, now)
        session.commit()
    if alerts:
        evaluate_alerts(engine, now)


def evaluate_alerts(engine: Engine, now: datetime | None = None) -> None:
    """One round of the controller's alert evaluation (default thresholds; offline alerts at once)."""
    evaluator = AlertEvaluator(
        engine,
        AlertsSection(offline_for_s=0),
        PolicyConfig(),
        controller_id="ctl-seed",
        central=lambda _now: CentralFacts("ctl-seed", version=__version__),
        heartbeat_ttl_s=5.0,
    )
    evaluator.run_once(now or datetime.now(UTC))


def put_event(engine: Engine, agent_id: str, kind: str, at: datetime | None = None, **fields: Any) -> None:
    if kind == "upload_completed":  # one completion per object key (the controller's dedup index)
        fields.setdefault("key", f"test/{agent_id}/{uuid.uuid4().hex}.flac")
    with Session(engine) as session:
        session.add(UploadEvent(agent_id=agent_id, kind=kind, at=at or datetime.now(UTC), **fields))
        session.commit()


def put_history(engine: Engine, spec: AgentSpec, samples: int, every: timedelta, end: datetime) -> None:
    """``samples`` telemetry rows ending at ``end``, with a temperature that climbs by 0.1 °C a sample."""
    with Session(engine) as session:
        for i in range(samples):
            at = end - every * (samples - 1 - i)
            session.add(
                TelemetrySample(
                    agent_id=spec.agent_id,
                    at=at,
                    received_at=at,
                    temperature_c=50.0 + 0.1 * i,
                    backlog_files=spec.backlog_files,
                    backlog_bytes=spec.backlog_bytes,
                    throughput_bps=spec.throughput_bps,
                    active_uploads=spec.active_uploads,
                    concurrency=spec.concurrency,
                )
            )
        session.commit()
