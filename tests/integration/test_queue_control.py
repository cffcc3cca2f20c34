"""Queue control end to end (docs/queue-control.md): the dashboard's JSON API → its MQTT v5 client → the real
Mosquitto with the generated ACL → a real agent service (real engine, journal and S3) and back.

The agent starts paused with four recordings in its spool; an operator holds one, moves another to the front and
retries a third; once the agent may upload (an assignment, one file at a time), the front one goes first and the
held one is not uploaded while the others are; released, it is. A viewer may look but not act; every action is in
the audit trail. The ACL keeps an agent from reading anyone's replies and from answering for another agent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from controller.store.database import create_all, make_engine
from controller.store.models import AuditEntry
from dashboard.app import create_app
from dashboard.config import parse_config
from edge_agent.service.engine_adapter import build_engine
from edgefleet.localservices import Mosquitto, SeaweedS3
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.codec import encode
from fleet_protocol.messages import Assignment
from fleet_protocol.topics import (
    AgentChannel,
    agent_topic,
    queue_reply_filter,
    queue_reply_topic,
    queue_request_topic,
)
from tests.corpus import write_wav
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, config_data, put_agents
from tests.integration.edge_agent.service.helpers import Observer, RunningAgent, agent_config
from tests.waiting import wait_for

AGENT = "q-agent-1"
DASHBOARD = "q-dashboard"


@pytest.fixture
def dashboard(mqtt_broker: Mosquitto, tmp_path: Path) -> Iterator[TestClient]:
    mqtt_url = mqtt_broker.login(DASHBOARD, role="dashboard")
    database_url = f"sqlite:///{tmp_path / 'dashboard.db'}"
    engine = make_engine(database_url)
    create_all(engine)
    put_agents(engine, [AgentSpec(AGENT)])
    config = parse_config(config_data(database_url, mqtt={"url": mqtt_url, "reply_timeout_s": 30}))
    app = create_app(config, engine=engine)
    with TestClient(app) as client:
        app.state.db_engine = engine
        yield client
    engine.dispose()


def _completed(observer: Observer) -> list[str]:
    events = [json.loads(p) for p in observer.payloads(f"{AGENT}/events")]
    return [e["file"] for e in events if e["kind"] == "upload_completed"]


def _queue(client: TestClient) -> dict[str, Any]:
    answer = client.get(f"/api/agents/{AGENT}/queue")
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


def _act(client: TestClient, csrf: str, action: str, file: str) -> dict[str, Any]:
    answer = client.post(
        f"/api/agents/{AGENT}/queue", json={"action": action, "file": file}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    assert reply["ok"], reply
    return reply


def test_operators_steer_an_agents_queue_through_the_broker(
    mqtt_broker: Mosquitto, s3_server: SeaweedS3, dashboard: TestClient, tmp_path: Path
) -> None:
    observer = Observer(mqtt_broker.login("q-controller", role="controller"), [agent_topic(AGENT, "events")], "q-c")
    config = agent_config(
        tmp_path,
        AGENT,
        mqtt_broker.login(AGENT),
        s3={**s3_server.settings().as_dict(), "prefix": "queue"},
        defaults={"paused": True, "concurrency": 1},
    )
    config.spool_dir.mkdir(parents=True)
    for seconds, name in enumerate(["a.wav", "b.wav", "c.wav", "d.wav"], start=1):  # smallest first: a, b, c, d
        write_wav(config.spool_dir / name, seconds=seconds, seed=seconds)
    agent = RunningAgent(config, engine_factory=build_engine)
    try:
        csrf = login(dashboard, "olga")
        wait_for(lambda: _queue(dashboard)["total"] == 4, 60, "the paused agent lists its four files")
        listed = _queue(dashboard)
        assert [e["file"] for e in listed["entries"]] == ["a.wav", "b.wav", "c.wav", "d.wav"]
        assert {e["state"] for e in listed["entries"]} == {"queued"}

        held = _act(dashboard, csrf, "hold", "b.wav")
        assert [(e["file"], e["state"]) for e in held["entries"]][-1] == ("b.wav", "held")
        first = _act(dashboard, csrf, "prioritize", "d.wav")
        assert first["entries"][0]["file"] == "d.wav"
        assert first["entries"][0]["first"]
        _act(dashboard, csrf, "retry", "c.wav")
        refused = dashboard.post(
            f"/api/agents/{AGENT}/queue", json={"action": "hold", "file": "nope.wav"}, headers={"X-CSRF-Token": csrf}
        ).json()
        assert not refused["ok"]
        assert "no such file" in refused["error"]

        page = dashboard.get(f"/agents/{AGENT}?queue=1").text  # the agent page's panel, for an operator
        assert 'id="queue-table"' in page
        assert page.count('name="action" value="release"') == 1  # only the held file can be released
        assert 'data-file="d.wav"><td>d.wav <span class="badge">first</span>' in page

        login(dashboard, "vic")
        assert _queue(dashboard)["total"] == 4  # a viewer may look
        page = dashboard.get(f"/agents/{AGENT}?queue=1").text
        assert 'id="queue-table"' in page
        assert "queue-actions" not in page
        viewer = dashboard.post(
            f"/api/agents/{AGENT}/queue", json={"action": "release", "file": "b.wav"}, headers={"X-CSRF-Token": csrf}
        )
        assert viewer.status_code == 403

        go = Assignment(agent_id=AGENT, seq=1, version=1, concurrency=1, part_size=5 << 20)
        observer.publish(agent_topic(AGENT, AgentChannel.ASSIGNMENT), encode(go))
        wait_for(lambda: len(_completed(observer)) >= 3, 120, lambda: f"three uploads, got {_completed(observer)}")
        assert _completed(observer) == ["d.wav", "a.wav", "c.wav"]  # the front one first; the held one not at all
        left = _queue(dashboard)
        assert left["total"] == 1
        assert left["entries"][0]["state"] == "held"

        csrf = login(dashboard, "olga")
        form = dashboard.post(
            f"/agents/{AGENT}/queue",
            data={"action": "release", "file": "b.wav", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert form.status_code == 303
        assert form.headers["location"] == f"/agents/{AGENT}?queue=1&msg=queue-done#queue"
        wait_for(lambda: "b.wav" in _completed(observer), 120, "the released file uploaded")
    finally:
        agent.stop()
        observer.close()

    with Session(dashboard.app.state.db_engine) as session:  # type: ignore[attr-defined]
        audit = list(session.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]
    assert [(a.who, a.action, a.target, a.detail["file"], a.detail["result"]) for a in audit] == [
        ("olga", "queue.hold", f"agent:{AGENT}", "b.wav", "done"),
        ("olga", "queue.prioritize", f"agent:{AGENT}", "d.wav", "done"),
        ("olga", "queue.retry", f"agent:{AGENT}", "c.wav", "done"),
        ("olga", "queue.hold", f"agent:{AGENT}", "nope.wav", "refused"),
        ("olga", "queue.release", f"agent:{AGENT}", "b.wav", "done"),
    ]


def test_an_agent_that_does_not_answer_is_reported(mqtt_broker: Mosquitto, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'dashboard.db'}"
    engine = make_engine(database_url)
    create_all(engine)
    mqtt = {"url": mqtt_broker.login("q-dashboard-2", role="dashboard"), "reply_timeout_s": 1}
    with TestClient(create_app(parse_config(config_data(database_url, mqtt=mqtt)), engine=engine)) as client:
        csrf = login(client, "olga")
        answer = client.get("/api/agents/nobody-home/queue")
        assert answer.status_code == 504
        assert "did not answer" in answer.json()["detail"]
        form = client.post(
            "/agents/nobody-home/queue",
            data={"action": "hold", "file": "x.wav", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert form.status_code == 303
        assert "msg=queue-no-answer" in form.headers["location"]
    with Session(engine) as session:
        (entry,) = session.exec(select(AuditEntry))
    assert (entry.action, entry.detail["result"]) == ("queue.hold", "no answer")
    engine.dispose()


class _Client:
    """A raw MQTT v5 client of one broker user: what it receives (topic, payload) on ``topics``."""

    def __init__(self, url: str, topics: tuple[str, ...] = ()) -> None:
        parsed = MqttUrl.parse(url)
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho_client(parsed, parsed.username or "")
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(parsed.host, parsed.port)
        self.client.loop_start()
        for topic in topics:
            self.subscribed.clear()
            self.client.subscribe(topic, qos=1)
            assert self.subscribed.wait(20), f"no SUBACK for {topic}"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, bytes(message.payload)))

    def messages(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.received)

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(20)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_acl_keeps_replies_to_their_requester(mqtt_broker: Mosquitto) -> None:
    """The requester reads only its own replies; an agent cannot answer for another agent, read any replies or
    read another agent's requests (the broker drops what its ACL denies, so each check ends on a message the
    client may receive, sent after the denied ones: once that is in, nothing else is coming)."""
    sentinel = {name: agent_topic(name, AgentChannel.ASSIGNMENT) for name in ("q-spy", "q-snoop")}
    requester = _Client(mqtt_broker.login("q-dash-acl", role="dashboard"), (queue_reply_filter("q-dash-acl"),))
    spy = _Client(mqtt_broker.login("q-spy"), ("edgefleet/v1/replies/#", sentinel["q-spy"]))
    snoop = _Client(mqtt_broker.login("q-snoop"), (queue_request_topic("q-victim"), sentinel["q-snoop"]))
    victim = _Client(mqtt_broker.login("q-victim"))
    controller = _Client(mqtt_broker.login("q-acl-controller", role="controller"))
    clients = (requester, spy, snoop, victim, controller)
    try:
        victim.send(queue_reply_topic("q-dash-acl", "q-victim"), b"honest")
        spy.send(queue_reply_topic("q-dash-acl", "q-victim"), b"spoof")  # denied: not its id
        spy.send(queue_reply_topic("q-dash-acl", "q-spy"), b"its own")
        wait_for(lambda: len(requester.messages()) >= 2, 60, "the requester's two replies")
        controller.send(queue_request_topic("q-victim"), b"request")
        for topic in sentinel.values():
            controller.send(topic, b"sentinel")
        wait_for(lambda: spy.messages() and snoop.messages(), 60, "the sentinels")
    finally:
        for client in clients:
            client.close()
    assert requester.messages() == [
        (queue_reply_topic("q-dash-acl", "q-victim"), b"honest"),
        (queue_reply_topic("q-dash-acl", "q-spy"), b"its own"),
    ]
    assert spy.messages() == [(sentinel["q-spy"], b"sentinel")]  # no reply, not even its own
    assert snoop.messages() == [(sentinel["q-snoop"], b"sentinel")]  # not another agent's request
