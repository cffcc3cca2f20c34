"""A fake agent: a real MQTT v5 client with the agent's own ACL user, as a Pi would connect."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgefleet.localservices import Mosquitto
from edgefleet.localservices.mosquitto import Role
from fleet_base import __version__
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, State, Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.waiting import wait_for


def connect_retrying(client: mqtt.Client, url: MqttUrl) -> None:
    """Connect ``client`` (not looping yet) once the broker accepts its user: ``add_user`` reloads the broker's
    password file, which takes a moment."""
    outcome: list[int] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: outcome.append(reason.value)

    def connected() -> bool:
        outcome.clear()
        try:
            client.connect(url.host, url.port)
        except OSError:
            return False
        for _ in range(200):  # up to ~10 s for the CONNACK
            if outcome or client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        return outcome[:1] == [0]

    wait_for(connected, 60, f"the broker accepts user {url.username}")


def add_user_and_wait(broker: Mosquitto, name: str, role: Role = "agent") -> None:
    """Add a broker user and wait until the broker lets it in (``add_user`` reloads the broker, which takes a
    moment). Only for a new user: the probe's clean start would end a session kept under that client id."""
    broker.add_user(name, role=role)
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    url = MqttUrl.parse(broker.url_for(name))
    probe.username_pw_set(url.username, url.password)
    connect_retrying(probe, url)
    probe.disconnect()


class FakeAgent:
    def __init__(self, url: str, agent_id: str, *, site: str = "garden", cores: int = 4, ram_bytes: int = 4 << 30):
        self.agent_id, self.site, self.cores, self.ram_bytes = agent_id, site, cores, ram_bytes
        self.url = MqttUrl.parse(url)
        self.seq = 0
        self.assignments: queue.SimpleQueue[tuple[float, dict[str, Any]]] = queue.SimpleQueue()
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=agent_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(self.url.username, self.url.password)
        client.will_set(self.topic(AgentChannel.STATE), self._state("offline"), qos=1, retain=True)
        client.on_message = self._message
        client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client = client

    def topic(self, channel: AgentChannel) -> str:
        return agent_topic(self.agent_id, channel)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _state(self, state: str) -> bytes:
        return encode(State(agent_id=self.agent_id, seq=self._next(), state=state))  # type: ignore[arg-type]

    def _message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        item = (time.time(), json.loads(message.payload))
        self.received.append(item)
        self.assignments.put(item)

    def connect(self, *, subscribe: bool = True, birth: bool = True) -> FakeAgent:
        for attempt in range(20):  # the broker may still be reloading its password file
            try:
                self.client.connect(self.url.host, self.url.port, keepalive=5)
                break
            except (ConnectionError, OSError):
                time.sleep(0.1 * (attempt + 1))
        self.client.loop_start()
        if subscribe:
            self.client.subscribe(self.topic(AgentChannel.ASSIGNMENT), qos=1)
            wait_for(self._subscribed.is_set, 60, "SUBACK")
        self.client.publish(self.topic(AgentChannel.STATE), self._state("online"), qos=1, retain=True)
        if birth:
            self.birth()
        return self

    def birth(self) -> None:
        message = Birth(
            agent_id=self.agent_id,
            seq=self._next(),
            model="Raspberry Pi 4 Model B",
            cores=self.cores,
            ram_bytes=self.ram_bytes,
            software_version=__version__,
            flac_encode_bps=20e6,
            site=self.site,
        )
        self.client.publish(self.topic(AgentChannel.BIRTH), encode(message), qos=1, retain=True).wait_for_publish(5)

    def telemetry(self, temperature_c: float | None = 50.0, **fields: Any) -> float:
        message = Telemetry(agent_id=self.agent_id, seq=self._next(), temperature_c=temperature_c, **fields)
        self.client.publish(self.topic(AgentChannel.TELEMETRY), encode(message), qos=1).wait_for_publish(5)
        return message.sent_at.timestamp()

    def next_assignment(
        self, timeout: float = 60.0, where: Callable[[dict[str, Any]], bool] = lambda a: True
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.agent_id}: no matching assignment within {timeout} s")
            try:
                _at, assignment = self.assignments.get(timeout=remaining)
            except queue.Empty:
                continue
            if where(assignment):
                return assignment

    def drop(self) -> None:
        """Vanish without DISCONNECT (power cut): the broker sends the Last Will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
