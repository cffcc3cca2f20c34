"""A newer agent's event kind through the real broker: the controller stores it as it came and counts it, the
dashboard shows it as ``unknown (<kind>)`` (docs/protocol.md, "Compatibility"). Real Mosquitto, SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from controller.service.app import Controller
from controller.store import repo
from controller.store.database import make_engine
from dashboard.app import create_app
from dashboard.config import parse_config
from fleet_protocol.codec import encode
from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel
from fleet_protocol.vocabulary import EventKind
from tests.integration.controller.fakes import FakeAgent
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import config_data
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_an_unknown_event_kind_is_stored_counted_and_shown(
    database_url: str, start_controller: Callable[..., Controller], make_agent: Callable[..., FakeAgent]
) -> None:
    pi = f"pi-newer-{uuid.uuid4().hex[:6]}"
    controller = start_controller(database_url)
    agent = make_agent(pi)
    agent.connect()
    sent = [
        Event(agent_id=pi, seq=agent._next(), kind="battery_low", file="", reason="battery at 11 %"),
        Event(agent_id=pi, seq=agent._next(), kind=EventKind.DISK_LOW, file="", reason="spool disk: 1.0 MiB free"),
        Event(agent_id=pi, seq=agent._next(), kind="battery_low", file="", reason="battery at 9 %"),
    ]
    for message in sent:
        agent.client.publish(agent.topic(AgentChannel.EVENTS), encode(message), qos=1).wait_for_publish(10)

    def stored() -> list[tuple[str, str]]:
        with Session(controller.engine) as session:
            return sorted((e.kind, e.reason) for e in repo.recent_events(session, agent_id=pi))

    assert wait_for(lambda: len(stored()) == 3, 60, what="the three events stored")
    assert stored() == [
        ("battery_low", "battery at 11 %"),
        ("battery_low", "battery at 9 %"),
        ("disk_low", "spool disk: 1.0 MiB free"),
    ]
    status = controller.status()
    assert status.unknown_event_kinds == {"battery_low": 2}
    assert not any(reason.startswith("events:") for reason in status.rejected_by)

    engine = make_engine(database_url)
    config = parse_config(config_data(database_url, snapshot_max_age_s=0))
    try:
        with TestClient(create_app(config, engine=engine)) as client:
            login(client, "vic")
            page = html.unescape(client.get(f"/agents/{pi}").text)
            events = client.get(f"/api/agents/{pi}/events").json()
    finally:
        engine.dispose()
    assert page.count("unknown (battery_low)") == 2
    assert "battery at 9 %" in page
    assert ">disk_low<" in page
    assert [e["kind"] for e in events] == ["battery_low", "disk_low", "battery_low"]
