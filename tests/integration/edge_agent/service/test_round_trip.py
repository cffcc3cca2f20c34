"""The agent's MQTT round trip against a real Mosquitto: QoS 1 messages published on a live connection are timed
to their PUBACK; a message queued while the broker was away is not (its wait is the outage, not the link)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from edge_agent.service.mqtt_link import MqttLink, _acknowledged
from edgefleet.localservices import Mosquitto
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.messages import State, Telemetry
from fleet_protocol.vocabulary import AgentStatus
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def make_link() -> Iterator[Callable[[Mosquitto], tuple[MqttLink, str]]]:
    links: list[MqttLink] = []

    def make(broker: Mosquitto) -> tuple[MqttLink, str]:
        agent_id = f"pi-rtt-{uuid.uuid4().hex[:6]}"
        url = broker.login(agent_id)
        link = MqttLink(
            MqttUrl.parse(url), agent_id, will=None, on_connect_messages=list, subscriptions=(),
            on_message=lambda _t, _p: None, max_delay=1,
        )  # fmt: skip
        links.append(link)
        link.start()
        return link, agent_id

    yield make
    for link in links:
        link.stop()


def test_qos1_messages_are_timed_to_their_puback(
    mqtt_broker: Mosquitto, make_link: Callable[[Mosquitto], tuple[MqttLink, str]]
) -> None:
    link, agent_id = make_link(mqtt_broker)
    assert link.connected.wait(20)
    link.publish(Telemetry(agent_id=agent_id, seq=0))  # QoS 0: no PUBACK, no figure
    assert link.round_trip_s() is None
    for seq in range(1, 4):
        link.publish(State(agent_id=agent_id, seq=seq, state=AgentStatus.ONLINE))
    rtt = wait_for(link.round_trip_s, 60, "a round trip")
    assert 0 < rtt < 10


def test_a_message_queued_while_the_broker_is_away_is_not_timed(
    mqtt_broker_factory: Callable[[], Mosquitto], make_link: Callable[[Mosquitto], tuple[MqttLink, str]]
) -> None:
    broker = mqtt_broker_factory()
    link, agent_id = make_link(broker)
    assert link.connected.wait(20)
    broker.stop()
    wait_for(lambda: not link.connected.is_set(), 60, "the link noticing the broker is gone")
    info = link._send(State(agent_id=agent_id, seq=1, state=AgentStatus.ONLINE))
    assert info is not None
    broker.start()
    wait_for(lambda: _acknowledged(info), 60, "the queued message acknowledged after the broker came back")
    assert link.round_trip_s() is None
