"""Small synchronous MQTT v5 helpers for the broker checks (paho-mqtt 2.x)."""

from __future__ import annotations

import queue
import threading
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from fleet_protocol.mqtt_url import MqttUrl


class Probe:
    """A connected MQTT v5 client that records what arrives and the reason code of every PUBACK."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = MqttUrl.parse(url)
        self.timeout = timeout
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._acks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self._connected: queue.Queue[ReasonCode] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(self.url.username, self.url.password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connected.put(rc)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_publish = self._on_publish

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._acked:
            self._acks[mid] = rc
            self._acked.notify_all()

    def connect(self) -> ReasonCode:
        """Connect and return the CONNACK reason code (0 = success, 134/135 = bad credentials/not authorized)."""
        self.client.connect(self.url.host, self.url.port)
        self.client.loop_start()
        return self._connected.get(timeout=self.timeout)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """QoS 1 publish; returns the PUBACK reason code value (0 = accepted, 0x87 = not authorized)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks, self.timeout):
                raise TimeoutError(f"no PUBACK for {topic}")
            return int(self._acks.pop(info.mid).value)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def url_with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.username}:{password}@{parts.hostname}:{parts.port}"
