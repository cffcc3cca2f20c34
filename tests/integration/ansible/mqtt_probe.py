"""Small synchronous MQTT v5 helpers for the broker checks (paho-mqtt 2.x), set up from a URL like every service
(``fleet_base.paho``: credentials, TLS with the URL's ``cafile``)."""

from __future__ import annotations

import queue
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client


class Probe:
    """A connected MQTT v5 client that records what arrives and the reason code of every PUBACK."""

    def __init__(self, url: str, timeout: float = 10.0, client_id: str | None = None) -> None:
        self.url = MqttUrl.parse(url)
        self.timeout = timeout
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._acks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self._connected: queue.Queue[ReasonCode] = queue.Queue()
        self.client = paho_client(self.url, client_id or f"probe-{uuid.uuid4().hex[:8]}")
        self.disconnected = threading.Event()
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connected.put(rc)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_publish = self._on_publish
        self._subacks: set[int] = set()
        self.client.on_subscribe = self._on_subscribe

    def _on_disconnect(self, *_: object) -> None:
        with self._acked:
            self.disconnected.set()
            self._acked.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, *_: object) -> None:
        with self._acked:
            self._subacks.add(mid)
            self._acked.notify_all()

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
        code = self.publish_outcome(topic, payload, retain)
        if code is None:
            raise ConnectionError(f"disconnected before the PUBACK for {topic}")
        return code

    def publish_outcome(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """QoS 1 publish; the PUBACK reason code value, or None when the connection dropped before it came."""
        self.disconnected.clear()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks or self.disconnected.is_set(), self.timeout):
                raise TimeoutError(f"no PUBACK for {topic}")
            if info.mid not in self._acks:
                return None
            return int(self._acks.pop(info.mid).value)

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK (Mosquitto grants a subscription its ACL denies: nothing is delivered)."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self._acked:
            if not self._acked.wait_for(lambda: mid in self._subacks, self.timeout):
                raise TimeoutError(f"no SUBACK for {topic}")
            self._subacks.discard(mid)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def url_with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


def url_without_tls(url: str) -> str:
    """The same user and address over plain MQTT (no TLS options)."""
    return urlunsplit(urlsplit(url)._replace(scheme="mqtt", query=""))
