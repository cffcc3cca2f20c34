"""The agent service against a real Mosquitto with per-agent ACLs (docs/design.md §2)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.engine import EngineEvent
from edge_agent.service.assignment_store import AssignmentStore
from edgefleet.localservices import Mosquitto
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment, Birth, State, Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind
from tests.integration.edge_agent.service.helpers import Observer, RunningAgent, agent_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


def states(observer: Observer, agent_id: str) -> list[AgentStatus]:
    topic = agent_topic(agent_id, AgentChannel.STATE)
    return [decode(topic, p).state for p in observer.payloads(topic) if p]  # type: ignore[attr-defined]


def telemetry(observer: Observer, agent_id: str) -> list[Telemetry]:
    return observer.messages_of(agent_id, AgentChannel.TELEMETRY, Telemetry)


def assignment(agent_id: str, version: int, **kw: object) -> bytes:
    fields: dict[str, object] = {"concurrency": 3, "part_size": 6 * MiB, "reason": "test"} | kw
    return encode(Assignment(agent_id=agent_id, seq=version, version=version, **fields))  # type: ignore[arg-type]


@pytest.fixture
def observer(mqtt_broker: Mosquitto) -> Iterator[Observer]:
    obs = Observer(mqtt_broker.url_for("controller"), ["edgefleet/v1/agents/#"])
    yield obs
    obs.close()


def start(broker: Mosquitto, tmp_path: Path, agent_id: str) -> RunningAgent:
    if agent_id not in broker.users:
        broker.add_user(agent_id)
    return RunningAgent(agent_config(tmp_path, agent_id, broker.url_for(agent_id)))


def test_birth_online_telemetry_and_last_will_when_the_socket_drops(mqtt_broker, observer, tmp_path):
    agent = start(mqtt_broker, tmp_path, "it-will")
    try:
        wait_for(lambda: states(observer, "it-will") == [AgentStatus.ONLINE], what="online")
        birth_topic = agent_topic("it-will", AgentChannel.BIRTH)
        [raw] = wait_for(lambda: observer.payloads(birth_topic), what="birth")
        birth = decode(birth_topic, raw)
        assert isinstance(birth, Birth)
        assert (birth.model, birth.cores, birth.bucket) == ("Test Pi", 4, "rec")
        wait_for(lambda: telemetry(observer, "it-will"), what="telemetry")
        # The TCP connection dies without DISCONNECT (as when the Pi loses power or the network):
        agent.runtime.link.client.socket().shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        wait_for(lambda: AgentStatus.OFFLINE in states(observer, "it-will"), what="Last Will")
        # ... and the agent reconnects by itself and says online again.
        wait_for(lambda: states(observer, "it-will")[-1] == AgentStatus.ONLINE, what="online again")
    finally:
        agent.stop()
    wait_for(lambda: states(observer, "it-will")[-1] == AgentStatus.OFFLINE, what="offline at clean stop")


def test_a_starting_agent_gets_its_retained_assignment(mqtt_broker, observer, tmp_path):
    topic = agent_topic("it-retained", AgentChannel.ASSIGNMENT)
    observer.publish(topic, assignment("it-retained", 4, paused=True))
    agent = start(mqtt_broker, tmp_path, "it-retained")
    try:
        wait_for(lambda: agent.engine.limits[-1].paused, what="retained assignment applied")
        assert agent.engine.limits[-1].concurrency == 3
        wait_for(lambda: any(t.assignment_version == 4 for t in telemetry(observer, "it-retained")))
    finally:
        agent.stop()
        observer.publish(topic, b"")
    stored = AssignmentStore(agent.runtime.config.state_dir).load("it-retained")
    assert stored is not None
    assert stored.version == 4


def test_a_running_agent_applies_a_new_assignment_and_survives_garbage(mqtt_broker, observer, tmp_path):
    agent = start(mqtt_broker, tmp_path, "it-live")
    topic = agent_topic("it-live", AgentChannel.ASSIGNMENT)
    try:
        wait_for(lambda: agent.runtime.link.connected.is_set(), what="connected")
        wait_for(lambda: states(observer, "it-live"), what="online")
        observer.publish(topic, b"{garbage")
        observer.publish(topic, assignment("it-live", 9, compression_level=1, bandwidth_bps=12345))
        wait_for(lambda: agent.engine.limits[-1].compression_level == 1, what="new assignment applied")
        assert agent.engine.limits[-1].bandwidth_bps == 12345
        assert agent.runtime.service.counters.invalid_messages == 1
        wait_for(lambda: any(t.assignment_version == 9 for t in telemetry(observer, "it-live")))
    finally:
        agent.stop()
        observer.publish(topic, b"")


def test_an_agent_cannot_publish_as_another_agent(mqtt_broker, observer, tmp_path):
    """The broker ACL (lead's fixture) drops it; the observer never sees a birth for the victim."""
    mqtt_broker.add_user("it-victim")
    agent = start(mqtt_broker, tmp_path, "it-intruder")
    try:
        wait_for(lambda: states(observer, "it-intruder"), what="online")
        victim = State(agent_id="it-victim", seq=1, state=AgentStatus.OFFLINE)
        agent.runtime.link.client.publish(agent_topic("it-victim", AgentChannel.STATE), encode(victim), 1)
        wait_for(lambda: len(telemetry(observer, "it-intruder")) >= 2, what="more telemetry")
        assert states(observer, "it-victim") == []
    finally:
        agent.stop()


def test_agent_survives_a_broker_restart_and_works_on_with_its_stored_assignment(mqtt_broker_factory, tmp_path):
    broker = mqtt_broker_factory()
    obs = Observer(broker.url_for("controller"), ["edgefleet/v1/agents/#"], client_id="obs-restart")
    topic = agent_topic("it-restart", AgentChannel.ASSIGNMENT)
    agent = start(broker, tmp_path, "it-restart")
    try:
        wait_for(lambda: states(obs, "it-restart"), what="online")
        obs.publish(topic, assignment("it-restart", 2, concurrency=5))
        wait_for(lambda: agent.engine.limits[-1].concurrency == 5, what="assignment v2")
        broker.stop()
        wait_for(lambda: not agent.runtime.link.connected.is_set(), what="disconnect noticed")
        # while the broker is away, a restarted agent works on with the stored assignment
        agent.stop()
        agent = RunningAgent(agent.runtime.config)
        assert agent.engine.limits[-1].concurrency == 5
        # an upload finishes while the broker is away: its event is delivered once the broker is back
        agent.runtime.inbox.put(EngineEvent(EventKind.UPLOAD_FAILED, str(tmp_path / "x.wav"), reason="while offline"))
        broker.start()
        wait_for(lambda: agent.runtime.link.connected.is_set(), timeout=60, what="reconnect after broker restart")
        obs.publish(topic, assignment("it-restart", 3, concurrency=1))
        wait_for(lambda: agent.engine.limits[-1].concurrency == 1, what="assignment v3 after the restart")
        wait_for(lambda: states(obs, "it-restart")[-1] == AgentStatus.ONLINE, what="online after restart")
        events_topic = agent_topic("it-restart", AgentChannel.EVENTS)
        [raw] = wait_for(lambda: obs.payloads(events_topic), what="event queued while offline")
        assert decode(events_topic, raw).reason == "while offline"  # type: ignore[attr-defined]
    finally:
        agent.stop()
        obs.close()
