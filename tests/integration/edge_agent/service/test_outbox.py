"""Events the broker has not acknowledged survive the agent's death (``kill -9``, power cut) in the outbox.

paho keeps unacknowledged QoS 1 messages in memory only. The agent's link stores each event in
``state_dir/outbox.db`` before publishing it and removes it on the PUBACK; a new process publishes what is
left before anything else.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.service.mqtt_link import MqttLink
from edge_agent.service.outbox import Outbox
from edgefleet.localservices import Mosquitto
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel, agent_filter
from fleet_protocol.vocabulary import EventKind
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


class Listener:
    def __init__(self, broker: Mosquitto) -> None:
        user = broker.users["controller"]
        self.events: list[Event] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(user.name, user.password)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.events.append(Event.model_validate_json(m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(agent_filter(AgentChannel.EVENTS), qos=1)
        self.client.loop_start()
        assert subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def link(broker: Mosquitto, agent_id: str, outbox: Path) -> MqttLink:
    return MqttLink(
        MqttUrl.parse(broker.url_for(agent_id)),
        agent_id,
        will=None,
        on_connect_messages=list,
        subscriptions=(),
        on_message=lambda _t, _p: None,
        max_delay=1,
        outbox=Outbox(outbox),
    )


def test_events_of_a_killed_agent_are_published_by_the_next_run(
    mqtt_broker_factory: Callable[[], Mosquitto], tmp_path: Path
) -> None:
    broker = mqtt_broker_factory()
    agent_id = f"pi-outbox-{uuid.uuid4().hex[:6]}"
    broker.add_user(agent_id)
    broker.stop()  # the broker is away while the uploads complete ...
    first = link(broker, agent_id, tmp_path / "outbox.db")
    first.start()
    events = [Event(agent_id=agent_id, seq=i, kind=EventKind.UPLOAD_COMPLETED, file=f"r{i}.wav") for i in range(5)]
    for event in events:
        first.publish(event)
    first.client.loop_stop()  # ... and the agent dies (no clean stop: paho's memory is gone)
    assert len(Outbox(tmp_path / "outbox.db").pending()) == len(events)

    broker.start()
    listener = Listener(broker)
    second = link(broker, agent_id, tmp_path / "outbox.db")
    try:
        second.start()
        wait_for(lambda: len(listener.events) >= len(events), 60, "the dead run's events")
        assert sorted(e.file for e in listener.events) == sorted(e.file for e in events)
        later = Event(agent_id=agent_id, seq=9, kind=EventKind.UPLOAD_STARTED, file="later.wav")
        second.publish(later)
        wait_for(lambda: any(e.file == "later.wav" for e in listener.events), 60, "a new event")
        # acknowledged events leave the outbox
        wait_for(lambda: Outbox(tmp_path / "outbox.db").pending() == [], 60, "an empty outbox")
    finally:
        second.stop()
        listener.close()
