"""Device identity on the real broker: a client id is its user name (no takeover of another client's session),
an agent publishes and receives only on its own topics, and oversized publishes are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgefleet.localservices import Mosquitto
from edgefleet.localservices.mosquitto import MESSAGE_SIZE_LIMIT
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.messages import MAX_PAYLOAD_BYTES
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
ACCEPTED = (0x00, 0x10)  # success, or "no matching subscribers"


class Probe:
    """A real MQTT v5 client that records what happens to it: disconnects, PUBACK codes, messages."""

    def __init__(self, broker: Mosquitto, user: str, client_id: str) -> None:
        self.client = paho_client(MqttUrl.parse(broker.url_for(user)), client_id)
        self.client.reconnect_delay_set(1, 1)
        self.connected = threading.Event()
        self.disconnects: list[str] = []
        self.pubacks: dict[int, int] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: list[list[int]] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        wait_for(self.connected.is_set, 60, f"{user} connected")

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if rc.value == 0:
            self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        with self._lock:
            self.disconnects.append(str(rc))

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties) -> None:
        with self._lock:
            self.pubacks[mid] = rc.value

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object) -> None:
        with self._lock:
            self.subacks.append([c.value for c in codes])

    def publish_acked(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> int:
        """Publish with QoS 1 and return the broker's PUBACK reason code."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        return int(wait_for(lambda: mid in self.pubacks, 60, f"PUBACK for {topic}") and self.pubacks[mid])

    def subscribe(self, *topics: str) -> None:
        before = len(self.subacks)
        self.client.subscribe([(t, 1) for t in topics])
        wait_for(lambda: len(self.subacks) > before, 60, "SUBACK")

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes(mqtt_broker: Mosquitto) -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


def _user(broker: Mosquitto, name: str, role: Literal["agent", "controller"] = "agent") -> str:
    broker.login(name, role)
    return name


def test_a_second_connection_of_the_same_user_takes_over_the_first(mqtt_broker: Mosquitto, probes: list[Probe]) -> None:
    """The control for the tests below: a takeover is what they would see if ids were not tied to users."""
    user = _user(mqtt_broker, "id-same")
    first = Probe(mqtt_broker, user, "whatever-1")
    probes.append(first)
    probes.append(Probe(mqtt_broker, user, "whatever-2"))
    wait_for(lambda: first.disconnects, 60, "the first connection to be taken over")


def test_an_agent_cannot_take_another_agents_client_id(mqtt_broker: Mosquitto, probes: list[Probe]) -> None:
    victim, attacker = _user(mqtt_broker, "id-victim"), _user(mqtt_broker, "id-attacker")
    probes.append(victim_probe := Probe(mqtt_broker, victim, victim))
    probes.append(attacker_probe := Probe(mqtt_broker, attacker, victim))  # claims the victim's client id
    # the victim's connection is untouched: a QoS 1 round trip after the attacker's CONNACK still works
    assert victim_probe.publish_acked(agent_topic(victim, AgentChannel.TELEMETRY)) in ACCEPTED
    assert victim_probe.disconnects == []
    assert victim_probe.client.is_connected()
    # and the attacker got its own identity, with its own rights only
    assert attacker_probe.publish_acked(agent_topic(victim, AgentChannel.TELEMETRY)) == 0x87
    assert attacker_probe.publish_acked(agent_topic(attacker, AgentChannel.TELEMETRY)) in ACCEPTED


@pytest.mark.parametrize(
    "claimed_id", ["controller", "edgefleet-controller-ctl-1", "edgefleet-controller-ctl-1-telemetry"]
)
def test_an_agent_cannot_disconnect_the_controller(
    mqtt_broker: Mosquitto, probes: list[Probe], claimed_id: str
) -> None:
    controller = _user(mqtt_broker, "id-controller", role="controller")
    attacker = _user(mqtt_broker, "id-attacker-2")
    probes.append(controller_probe := Probe(mqtt_broker, controller, "edgefleet-controller-ctl-1"))
    probes.append(Probe(mqtt_broker, attacker, claimed_id))
    assert controller_probe.publish_acked(CONTROLLER_STATE_TOPIC) in ACCEPTED
    assert controller_probe.disconnects == []


AGENT = "acl-a"
OTHER = "acl-b"
FORBIDDEN_PUBLISH = [
    agent_topic(OTHER, AgentChannel.TELEMETRY),
    agent_topic(OTHER, AgentChannel.BIRTH),
    agent_topic(OTHER, AgentChannel.STATE),
    agent_topic(OTHER, AgentChannel.EVENTS),
    agent_topic(AGENT, AgentChannel.ASSIGNMENT),  # an agent cannot assign itself
    agent_topic(OTHER, AgentChannel.ASSIGNMENT),
    CONTROLLER_STATE_TOPIC,
    f"edgefleet/v1/agents/{AGENT}/telemetry/extra",
    "edgefleet/v1/other",
    "elsewhere/topic",
    "$SYS/broker/fake",
]


@pytest.mark.parametrize("topic", FORBIDDEN_PUBLISH)
def test_an_agent_cannot_publish_outside_its_own_topics(
    mqtt_broker: Mosquitto, probes: list[Probe], topic: str
) -> None:
    probes.append(agent := Probe(mqtt_broker, _user(mqtt_broker, AGENT), AGENT))
    assert agent.publish_acked(topic) == 0x87  # Not authorized


@pytest.mark.parametrize(
    "channel", [AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.TELEMETRY, AgentChannel.EVENTS]
)
def test_an_agent_publishes_on_its_own_topics(
    mqtt_broker: Mosquitto, probes: list[Probe], channel: AgentChannel
) -> None:
    probes.append(agent := Probe(mqtt_broker, _user(mqtt_broker, AGENT), AGENT))
    assert agent.publish_acked(agent_topic(AGENT, channel)) in ACCEPTED


def test_an_agent_receives_nothing_outside_its_own_topics(mqtt_broker: Mosquitto, probes: list[Probe]) -> None:
    """Mosquitto 2.0 grants any SUBSCRIBE but delivers only what the ACL lets the user read: another agent's
    assignment, its telemetry and retained messages never reach this agent, whatever filter it uses."""
    controller = _user(mqtt_broker, "acl-controller", role="controller")
    other = _user(mqtt_broker, OTHER)
    probes.append(ctl := Probe(mqtt_broker, controller, controller))
    probes.append(other_probe := Probe(mqtt_broker, other, other))
    assert ctl.publish_acked(agent_topic(OTHER, AgentChannel.ASSIGNMENT), b"retained-other", retain=True) in ACCEPTED
    probes.append(agent := Probe(mqtt_broker, _user(mqtt_broker, AGENT), AGENT))
    agent.subscribe(
        "#",
        "edgefleet/v1/agents/+/assignment",
        agent_topic(OTHER, AgentChannel.ASSIGNMENT),
        agent_topic(OTHER, AgentChannel.TELEMETRY),
        "$share/steal/edgefleet/v1/agents/+/telemetry",
        agent_topic(AGENT, AgentChannel.ASSIGNMENT),
    )
    assert ctl.publish_acked(agent_topic(OTHER, AgentChannel.ASSIGNMENT), b"to-other") in ACCEPTED
    assert other_probe.publish_acked(agent_topic(OTHER, AgentChannel.TELEMETRY), b"other-telemetry") in ACCEPTED
    assert ctl.publish_acked(agent_topic(AGENT, AgentChannel.ASSIGNMENT), b"to-agent") in ACCEPTED
    # the broker delivers to one client in order: once the agent's own message is in, the others would be too
    wait_for(lambda: agent.received(agent_topic(AGENT, AgentChannel.ASSIGNMENT)), 60, "the agent's own assignment")
    # (a copy per matching subscription: the filters overlap; the retained controller state is readable by all)
    assert {t for t, _ in agent.messages} <= {agent_topic(AGENT, AgentChannel.ASSIGNMENT), CONTROLLER_STATE_TOPIC}
    ctl.publish_acked(agent_topic(OTHER, AgentChannel.ASSIGNMENT), b"", retain=True)  # clear the retained message


def test_oversized_publishes_are_refused(mqtt_broker: Mosquitto, probes: list[Probe]) -> None:
    """A publish above ``message_size_limit`` is not forwarded: Mosquitto 2.0.11 answers a QoS 1 one with a
    PUBACK that paho 2.2 cannot parse, so the sender drops its connection. One at the protocol's own limit passes,
    and the broker serves everybody else on."""
    controller = _user(mqtt_broker, "size-controller", role="controller")
    sender = _user(mqtt_broker, "size-agent")
    topic = agent_topic(sender, AgentChannel.TELEMETRY)
    probes.append(ctl := Probe(mqtt_broker, controller, controller))
    ctl.subscribe(topic)
    oversized = Probe(mqtt_broker, sender, sender)
    try:
        oversized.client.publish(topic, b"x" * (MESSAGE_SIZE_LIMIT + 1), qos=1)
        wait_for(lambda: oversized.disconnects, 60, "the broker's answer to the oversized publish")
    finally:
        oversized.close()  # paho would send the in-flight message again on every reconnect
    probes.append(agent := Probe(mqtt_broker, sender, sender))
    assert agent.publish_acked(topic, b"y" * MAX_PAYLOAD_BYTES) == 0
    wait_for(lambda: ctl.received(topic), 60, "the protocol-sized message")
    # the broker handled the oversized publish first: had it forwarded it, it would have arrived first
    assert [len(p) for p in ctl.received(topic)] == [MAX_PAYLOAD_BYTES]
    assert ctl.disconnects == []
