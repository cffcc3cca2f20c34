"""Alert evaluation and the outbox against real SQLite and PostgreSQL: open and resolve with times, one open row
per instance, the leader evaluates the fleet, a bad agent row does not stop the round; delivery retries with
backoff, gives up, and drops webhooks no longer configured."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller.alerting import store
from controller.alerting.evaluator import AlertEvaluator
from controller.alerting.notify import Notifier
from controller.alerting.rules import CentralFacts, Kind
from controller.config import AlertsSection, WebhookSection
from controller.policy import PolicyConfig
from controller.store.database import as_utc
from controller.store.instances import WATERMARK_HOLD_MAX, heard_until, heartbeat
from controller.store.models import Agent, AlertNotification, AlertRecord, UploadEvent

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook"


def put_agent(engine: Engine, agent_id: str, at: datetime, **values: Any) -> None:
    with Session(engine) as session:
        row = session.get(Agent, agent_id) or Agent(id=agent_id, site="north")
        fields = {"online": True, "online_since": at, "last_seen": at, "telemetry_at": at, "temperature_c": 50.0}
        for name, value in {**fields, **values}.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def evaluator(engine: Engine, controller_id: str = "ctl-1", **config: Any) -> AlertEvaluator:
    threads = {"tick": True}
    return AlertEvaluator(
        engine,
        AlertsSection(webhooks=[WebhookSection(url=HOOK)], **config),
        PolicyConfig(),
        controller_id=controller_id,
        central=lambda _now: CentralFacts(controller_id, threads),
        heartbeat_ttl_s=30.0,
    )


def alerts(engine: Engine) -> list[AlertRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AlertRecord).order_by(AlertRecord.id)).all())  # type: ignore[arg-type]


def outbox(engine: Engine) -> list[AlertNotification]:
    with Session(engine) as session:
        return list(session.exec(select(AlertNotification).order_by(AlertNotification.id)).all())  # type: ignore[arg-type]


def test_an_alert_opens_once_resolves_with_its_times_and_notifies_each_change(engine: Engine) -> None:
    ev = evaluator(engine)
    put_agent(engine, "pi-01", T0, temperature_c=75.0)
    ev.run_once(T0)
    ev.run_once(T0 + timedelta(seconds=15))  # still hot: no second row, no second notification
    (hot,) = alerts(engine)
    assert (hot.kind, hot.agent_id, hot.resolved_at, as_utc(hot.started_at)) == ("hot", "pi-01", None, T0)
    put_agent(engine, "pi-01", T0 + timedelta(seconds=20), temperature_c=60.0)
    ev.run_once(T0 + timedelta(seconds=30))
    (hot,) = alerts(engine)
    assert as_utc(hot.resolved_at) == T0 + timedelta(seconds=30)
    assert [(n.status, n.webhook) for n in outbox(engine)] == [("firing", HOOK), ("resolved", HOOK)]
    put_agent(engine, "pi-01", T0 + timedelta(seconds=40), temperature_c=76.0)
    ev.run_once(T0 + timedelta(seconds=45))  # hot again: a new instance row
    assert [a.resolved_at is None for a in alerts(engine)] == [False, True]


def test_only_the_leader_evaluates_the_fleet_and_each_controller_its_own(engine: Engine) -> None:
    with Session(engine) as session:
        for controller_id in ("ctl-1", "ctl-2"):
            heartbeat(session, controller_id, now=T0, started_at=T0, ttl_s=30)
    put_agent(engine, "pi-01", T0, temperature_c=85.0)
    leader, follower = evaluator(engine, "ctl-1"), evaluator(engine, "ctl-2")
    follower.central = lambda _now: CentralFacts("ctl-2", {"janitor": False})
    assert not follower.run_once(T0).leader
    assert leader.run_once(T0).leader
    assert sorted((a.kind, a.scope) for a in alerts(engine)) == [("critical", "fleet"), ("thread_down", "ctl-2")]
    leader.run_once(T0 + timedelta(seconds=1))  # the leader never resolves the follower's own alert
    assert all(a.resolved_at is None for a in alerts(engine))


def test_a_bad_agent_row_does_not_stop_the_round(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    put_agent(engine, "pi-bad", T0, temperature_c=90.0)
    put_agent(engine, "pi-good", T0, temperature_c=90.0)
    ev = evaluator(engine)
    real = ev._facts

    def facts(row: Any, completed: Mapping[str, datetime], now: datetime, heard_until: datetime) -> Any:
        if row[0] == "pi-bad":
            raise ValueError("a row no rule can read")
        return real(row, dict(completed), now, heard_until)

    monkeypatch.setattr(ev, "_facts", facts)
    ev.run_once(T0)
    assert [(a.agent_id, a.kind) for a in alerts(engine)] == [("pi-good", Kind.CRITICAL.value)]
    assert ev.failed_agents == 1


def test_an_offline_alert_starts_when_the_agent_went_offline(engine: Engine) -> None:
    put_agent(engine, "pi-01", T0 - timedelta(hours=1), online=False, offline_since=T0 - timedelta(minutes=10))
    evaluator(engine).run_once(T0)
    (offline,) = alerts(engine)
    assert (offline.kind, as_utc(offline.started_at)) == ("offline", T0 - timedelta(minutes=10))


def test_silence_is_measured_from_the_earliest_ingest_watermark_of_the_live_controllers(engine: Engine) -> None:
    behind = T0 - timedelta(seconds=90)
    with Session(engine) as session:
        heartbeat(session, "ctl-1", now=T0, started_at=T0, ttl_s=30, stored_through=T0)
        heartbeat(session, "ctl-2", now=T0, started_at=T0, ttl_s=30, stored_through=behind)  # 90 s behind
        heartbeat(session, "ctl-old", now=T0, started_at=T0, ttl_s=30)  # an older controller: says nothing
        assert heard_until(session, ["ctl-1", "ctl-2", "ctl-old"], T0) == behind
        assert heard_until(session, ["ctl-1", "ctl-old"], T0) == T0
        assert heard_until(session, ["ctl-old"], T0) == T0
        heartbeat(session, "ctl-2", now=T0, started_at=T0, ttl_s=30, stored_through=T0 - timedelta(hours=1))
        assert heard_until(session, ["ctl-1", "ctl-2"], T0) == T0 - WATERMARK_HOLD_MAX  # a stuck ingest: not waited for
        heartbeat(session, "ctl-2", now=T0, started_at=T0, ttl_s=30, stored_through=behind)
    # last heard 2 min ago, 30 s before the watermark: online for the alerts (offline after 60 s of silence)
    put_agent(engine, "pi-01", T0 - timedelta(minutes=2))
    (facts,) = evaluator(engine).fleet_facts(Session(engine), T0, ["ctl-1", "ctl-2"])
    assert facts.online
    (facts,) = evaluator(engine).fleet_facts(Session(engine), T0, ["ctl-1"])
    assert not facts.online


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_delivery_retries_with_backoff_then_gives_up(engine: Engine) -> None:
    put_agent(engine, "pi-01", T0, temperature_c=75.0)
    evaluator(engine).run_once(T0)
    posted: list[Mapping[str, object]] = []
    down = {"down": True}

    def post(_webhook: WebhookSection, body: Mapping[str, object]) -> None:
        if down["down"]:
            raise ConnectionRefusedError("receiver down")
        posted.append(body)

    config = AlertsSection(webhooks=[WebhookSection(url=HOOK)], retry_first_s=10, retry_max_s=40, give_up_after_h=1)
    notifier = Notifier(engine, config, scopes=lambda: {"fleet"}, post=post)
    clock = Clock()
    assert notifier.deliver_due(clock) == 0
    (n,) = outbox(engine)
    assert (n.attempts, as_utc(n.next_attempt_at), n.last_error) == (
        1, T0 + timedelta(seconds=10), "ConnectionRefusedError: receiver down")  # fmt: skip
    clock.now = T0 + timedelta(seconds=5)
    notifier.deliver_due(clock)  # not due yet
    assert outbox(engine)[0].attempts == 1
    clock.now = T0 + timedelta(seconds=10)
    notifier.deliver_due(clock)
    assert as_utc(outbox(engine)[0].next_attempt_at) == T0 + timedelta(seconds=30)  # doubled
    down["down"] = False
    clock.now = T0 + timedelta(seconds=30)
    assert notifier.deliver_due(clock) == 1
    assert [b["status"] for b in posted] == ["firing"]
    assert outbox(engine)[0].delivered_at is not None
    assert notifier.deliver_due(clock) == 0  # delivered once only

    put_agent(engine, "pi-01", T0, temperature_c=50.0)
    evaluator(engine).run_once(T0 + timedelta(minutes=1))  # resolved: queued
    down["down"] = True
    clock.now = T0 + timedelta(hours=2)  # older than give_up_after_h
    notifier.deliver_due(clock)
    resolved = outbox(engine)[-1]
    assert (resolved.status, resolved.given_up, resolved.delivered_at) == ("resolved", True, None)
    assert notifier.given_up == 1


def test_a_webhook_no_longer_configured_is_given_up(engine: Engine) -> None:
    put_agent(engine, "pi-01", T0, temperature_c=75.0)
    evaluator(engine).run_once(T0)
    other = AlertsSection(webhooks=[WebhookSection(url="http://127.0.0.1:9/other")])
    notifier = Notifier(engine, other, scopes=lambda: {"fleet"}, post=lambda _w, _b: None)
    assert notifier.deliver_due(Clock()) == 0
    (n,) = outbox(engine)
    assert (n.given_up, n.last_error) == (True, "webhook no longer configured")


def test_no_completed_upload_reads_the_recent_events(engine: Engine) -> None:
    old = T0 - timedelta(hours=30)
    for agent_id in ("pi-busy", "pi-idle"):
        put_agent(engine, agent_id, T0, birth_at=old, backlog_files=4)
    with Session(engine) as session:
        for agent_id, at in (("pi-busy", T0 - timedelta(hours=2)), ("pi-idle", T0 - timedelta(hours=26))):
            session.add(UploadEvent(agent_id=agent_id, kind="upload_completed", key=f"k/{agent_id}", at=at))
        session.commit()
    evaluator(engine).run_once(T0)
    assert [(a.agent_id, a.kind) for a in alerts(engine)] == [("pi-idle", "no_upload")]
    assert alerts(engine)[0].annotations["summary"] == "pi-idle: no upload completed in 24 h"


def test_resolved_alerts_and_done_notifications_are_pruned(engine: Engine) -> None:
    ev = evaluator(engine)
    put_agent(engine, "pi-old", T0, temperature_c=75.0)
    put_agent(engine, "pi-open", T0, temperature_c=85.0)
    ev.run_once(T0)
    put_agent(engine, "pi-old", T0, temperature_c=50.0)
    ev.run_once(T0 + timedelta(minutes=1))  # pi-old resolved: 2 notifications; pi-open: 1, pending
    with Session(engine) as session:
        assert store.prune(session, T0 + timedelta(minutes=2)) == 1
    assert [(a.agent_id, a.resolved_at) for a in alerts(engine)] == [("pi-open", None)]
    assert [n.status for n in outbox(engine)] == ["firing"]  # the open alert's, not yet delivered: kept
