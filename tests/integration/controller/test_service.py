"""The controller service against the real Mosquitto (ACL users) and real SQLite/PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text
from sqlmodel import Session

from controller.store import repo
from controller.store.database import AGENT_WRITES_LOCK_KEY
from edgefleet.localservices import Mosquitto, Postgres
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.integration.controller.helpers import MakeAgent, StartController, agent_row, unique
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_invalid_payloads_are_counted_and_never_fatal(
    database_url: str, start_controller: StartController, make_agent: MakeAgent, mqtt_broker: Mosquitto
) -> None:
    controller = start_controller(database_url)
    agent_id = unique("pi-bad")
    url = MqttUrl.parse(mqtt_broker.login("rogue", role="controller"))
    rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("rogue"), protocol=mqtt.MQTTv5)
    rogue.username_pw_set(url.username, url.password)
    rogue.connect(url.host, url.port)
    rogue.loop_start()
    telemetry = agent_topic(agent_id, AgentChannel.TELEMETRY)
    bad = [
        (telemetry, b"not json"),
        (telemetry, b"[1, 2]"),
        (telemetry, b'{"v": 99, "agent_id": "x", "seq": 1}'),
        (telemetry, b'{"v": 1, "agent_id": "someone-else", "seq": 1}'),
        (telemetry, b'{"v": 1, "agent_id": "%s", "seq": -1}' % agent_id.encode()),
        (agent_topic(agent_id, AgentChannel.EVENTS), b'{"v": 1, "agent_id": "%s", "seq": 1}' % agent_id.encode()),
        (telemetry, b"\xff" * 70_000),
    ]
    for topic, payload in bad:
        rogue.publish(topic, payload, qos=1).wait_for_publish(5)
    rogue.disconnect()
    rogue.loop_stop()
    agent = make_agent(agent_id).connect()
    agent.telemetry(55.0)
    row = wait_for(lambda: agent_row(controller, agent_id), what="valid telemetry stored after the bad ones")
    wait_for(lambda: (r := agent_row(controller, agent_id)) and r.temperature_c == 55.0, what="telemetry")
    assert row.online
    with Session(controller.engine) as session:
        counts = wait_for(lambda: sum(repo.reject_counts(session).values()) >= len(bad) and repo.reject_counts(session))
    assert counts["telemetry:PayloadError"] == 6
    assert counts["events:PayloadError"] == 1
    assert controller.ingestor.stats.rejected == len(bad)
    assert agent.next_assignment()["concurrency"] >= 1  # still working


def test_last_will_marks_agent_offline(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    controller = start_controller(database_url)
    agent = make_agent(unique("pi-will")).connect()
    agent.telemetry(50.0)
    wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and r.online, what="agent online")
    agent.drop()
    row = wait_for(
        lambda: (r := agent_row(controller, agent.agent_id)) and not r.online and r,
        timeout=20,
        what="Last Will → offline",
    )
    assert row.offline_since is not None


def test_stale_telemetry_marks_agent_offline(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    controller = start_controller(database_url, offline_after_s=1.0)
    agent = make_agent(unique("pi-stale")).connect()
    agent.telemetry(50.0)
    wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and r.online, what="agent online")
    wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and not r.online, timeout=60, what="stale → offline")


def test_a_stalled_ingest_does_not_mark_its_agents_offline(
    postgres: Postgres, start_controller: StartController, make_agent: MakeAgent
) -> None:
    """Silence is measured against what is stored: while the ingest cannot store (here: another transaction holds
    the agent-writes lock, as a long batch of the other controller would), an agent that keeps sending stays
    online; once it really stops, it goes offline as before."""
    controller = start_controller(postgres.create_database(), offline_after_s=2.0)
    agent = make_agent(unique("pi-stall")).connect()
    agent.telemetry(50.0)
    wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and r.online, what="agent online")

    def behind() -> float:
        now = time.time()
        return now - controller.ingestor.stored_through(now)

    with controller.engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AGENT_WRITES_LOCK_KEY})
        # the agent keeps talking; nothing of it is stored for twice the offline time
        wait_for(lambda: agent.telemetry(50.0) and behind() > 4.0, timeout=60, interval=0.3, what="ingest stalled")
        ticks = controller.ticks
        wait_for(lambda: controller.ticks >= ticks + 3, timeout=60, what="three full ticks during the stall")
        row = agent_row(controller, agent.agent_id)
        assert row is not None
        assert row.online, "an agent whose messages wait in the ingest was marked offline"
    wait_for(lambda: behind() < 1.0, timeout=60, what="the ingest caught up")
    wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and not r.online, timeout=60, what="silent → offline")


def test_hot_agent_is_throttled_and_restored_with_hysteresis(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    start_controller(database_url, policy={"cool_hold_s": 2.0})
    agent = make_agent(unique("pi-hot")).connect()
    agent.telemetry(50.0)
    first = agent.next_assignment()
    assert not first["paused"]
    assert first["compression_level"] == 5
    sent = agent.telemetry(85.0)
    hot = agent.next_assignment(where=lambda a: a["version"] > first["version"])
    assert hot["paused"]
    assert "85.0 °C ≥ 80.0 °C hard limit: paused" in hot["reason"]
    assert time.time() - sent < 5
    # 68 °C: below the soft limit but inside the 5 °C margin; steps down to "warm", never to full speed.
    cooling_started = time.time()
    while time.time() - cooling_started < 4.0:
        agent.telemetry(68.0)
        time.sleep(0.25)
    newer = [a for _t, a in agent.received if a["version"] > hot["version"]]
    assert newer, "should have stepped down from paused"
    assert all(a["compression_level"] != 5 for a in newer), newer
    assert not newer[-1]["paused"]
    # 60 °C: cool enough; back to full only after the hold time.
    cool_sent = time.time()
    last_version = newer[-1]["version"]
    restored = None
    while restored is None and time.time() - cool_sent < 10:
        agent.telemetry(60.0)
        time.sleep(0.2)
        restored = next(
            ((t, a) for t, a in agent.received if a["version"] > last_version and a["compression_level"] == 5), None
        )
    assert restored is not None, "never restored"
    at, assignment = restored
    assert at - cool_sent >= 2.0 - 0.3
    assert not assignment["paused"]
    assert "cool for" in assignment["reason"]


def test_reconnecting_agent_gets_its_retained_assignment(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    start_controller(database_url)
    agent_id = unique("pi-retained")
    agent = make_agent(agent_id).connect()
    agent.telemetry(50.0)
    assignment = agent.next_assignment()
    agent.close()
    again = make_agent(agent_id)
    again.client.connect(again.url.host, again.url.port)
    again.client.loop_start()
    again.client.subscribe(again.topic(AgentChannel.ASSIGNMENT), qos=1)
    retained = again.next_assignment()
    assert retained["version"] == assignment["version"]
    assert retained["concurrency"] == assignment["concurrency"]


def test_operator_override_reaches_the_agent_with_operator_reason(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    controller = start_controller(database_url)
    agent = make_agent(unique("pi-op")).connect()
    agent.telemetry(50.0)
    first = agent.next_assignment()
    with Session(controller.engine) as session:
        repo.set_override(session, who="alice", agent_id=agent.agent_id, paused=True)
    paused = agent.next_assignment(where=lambda a: a["version"] > first["version"])
    assert paused["paused"]
    assert "operator alice: paused" in paused["reason"]
    with Session(controller.engine) as session:
        assert repo.clear_override(session, who="alice", agent_id=agent.agent_id)
        assert [e.action for e in repo.list_audit(session, target=f"agent:{agent.agent_id}")] == [
            "override.clear",
            "override.set",
        ]
    resumed = agent.next_assignment(where=lambda a: a["version"] > paused["version"])
    assert not resumed["paused"]


def test_controller_restart_continues_versions_and_publishes_only_changes(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    controller = start_controller(database_url, controller_id="ctl-a")
    agent = make_agent(unique("pi-restart")).connect()
    agent.telemetry(50.0)
    first = agent.next_assignment(where=lambda a: "no telemetry yet" not in a["reason"])
    time.sleep(1.0)  # several ticks with nothing new: nothing published
    assert max(a["version"] for _t, a in agent.received) == first["version"]
    controller.stop()
    start_controller(database_url, controller_id="ctl-b")
    agent.telemetry(85.0)
    hot = agent.next_assignment(where=lambda a: a["paused"])
    assert hot["version"] == first["version"] + 1


def test_controller_survives_a_broker_restart(
    tmp_path: Path,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
) -> None:
    broker = mqtt_broker_factory()
    controller = start_controller(f"sqlite:///{tmp_path / 'c.db'}", broker=broker)
    agent_id = unique("pi-broker")
    agent = make_agent(agent_id, broker=broker).connect()
    agent.telemetry(50.0)
    first = agent.next_assignment(where=lambda a: "no telemetry yet" not in a["reason"])
    agent.close()
    broker.restart(downtime=1.0)
    wait_for(lambda: controller.link.sessions >= 2, timeout=60, what="controller reconnected and resubscribed")
    again = make_agent(agent_id, broker=broker).connect()
    again.telemetry(85.0)
    hot = again.next_assignment(where=lambda a: a["paused"])
    assert hot["version"] > first["version"]
