"""An alert fired and resolved through the real broker and controller, delivered to a webhook receiver written
for the test (Alertmanager's JSON): retried while the receiver is down, kept across a controller restart (the
outbox), one firing and one resolved notification per alert instance."""

from __future__ import annotations

import urllib.error
import uuid
from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from controller.alerting.notify import post_json
from controller.config import WebhookSection
from controller.service.app import Controller
from controller.store.models import AlertNotification, AlertRecord
from edgefleet.localservices.process import free_port
from tests.integration.controller.fakes import FakeAgent
from tests.integration.controller.webhook import Receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SECRET = "Bearer test-token-0123"


def notifications(controller: Controller, agent_id: str) -> list[AlertNotification]:
    with Session(controller.engine) as session:
        ids = {r.id for r in session.exec(select(AlertRecord).where(AlertRecord.agent_id == agent_id)).all()}
        return [n for n in session.exec(select(AlertNotification)).all() if n.alert_id in ids]


def alerts_of(controller: Controller, agent_id: str) -> list[AlertRecord]:
    with Session(controller.engine) as session:
        return list(session.exec(select(AlertRecord).where(AlertRecord.agent_id == agent_id)).all())


@pytest.mark.timeout(180)
def test_an_alert_fires_and_resolves_through_a_webhook_retried_across_a_restart(
    database_url: str,
    start_controller: Callable[..., Controller],
    make_agent: Callable[..., FakeAgent],
    receiver: Receiver,
) -> None:
    alerts = {
        "evaluate_interval_s": 0.2,
        "retry_first_s": 0.2,
        "retry_max_s": 0.5,
        "external_url": "http://dashboard.test",
        "webhooks": [{"url": f"http://127.0.0.1:{receiver.port}/hook", "header": "Authorization", "secret": SECRET}],
    }
    # a long offline_after_s: a slow restart on a busy machine must not mark the agent offline (the alert would resolve)
    controller = start_controller(database_url, alerts=alerts, offline_after_s=3600)
    agent_id = f"pi-{uuid.uuid4().hex[:8]}"
    agent = make_agent(agent_id).connect()
    agent.telemetry(temperature_c=75.0)

    # the receiver is down: the firing notification waits in the outbox and is retried
    wait_for(lambda: any(n.attempts >= 2 for n in notifications(controller, agent_id)), 60, "retries")
    (queued,) = notifications(controller, agent_id)
    assert (queued.status, queued.delivered_at) == ("firing", None)
    assert queued.last_error
    controller.stop()

    receiver.start()
    controller = start_controller(database_url, alerts=alerts, offline_after_s=3600)
    wait_for(lambda: receiver.of(agent_id), 60, "the firing notification after the restart")
    assert receiver.of(agent_id) == [("firing", "EdgefleetAgentHot")]
    ((headers, body),) = receiver.about(agent_id)
    assert headers["Authorization"] == SECRET
    assert body["version"] == "4"
    (alert,) = body["alerts"]
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == f"http://dashboard.test/agents/{agent_id}"
    assert agent_id in alert["annotations"]["summary"]

    agent.telemetry(temperature_c=50.0)
    wait_for(lambda: len(receiver.of(agent_id)) >= 2, 60, "the resolved notification")
    (record,) = alerts_of(controller, agent_id)
    assert record.resolved_at is not None
    rounds = controller.alerts.rounds
    wait_for(lambda: controller.alerts.rounds >= rounds + 5, 60, "more evaluation rounds")
    assert receiver.of(agent_id) == [("firing", "EdgefleetAgentHot"), ("resolved", "EdgefleetAgentHot")]
    resolved = receiver.about(agent_id)[-1][1]["alerts"][0]
    assert resolved["fingerprint"] == alert["fingerprint"]
    assert resolved["endsAt"] != "0001-01-01T00:00:00Z"
    # every delivery counted (other agents' alerts in a shared database are delivered too: count them all)
    wait_for(lambda: controller.status().notifications["delivered"] == len(receiver.received), 60, "counted")


@pytest.mark.parametrize("answer", [302, 500, 404])
def test_a_redirect_or_an_error_status_is_a_failed_delivery(answer: int) -> None:
    target = Receiver(free_port()).start()
    hook = Receiver(free_port(), answer, {"Location": f"http://127.0.0.1:{target.port}/elsewhere"}).start()
    try:
        webhook = WebhookSection(url=f"http://127.0.0.1:{hook.port}/", header="Authorization", secret=SECRET)
        with pytest.raises(urllib.error.HTTPError):
            post_json(webhook, {"version": "4"})
        assert len(hook.received) == 1
        assert target.received == []  # the secret header was not carried to another address
    finally:
        hook.stop()
        target.stop()
