"""``SysReader``: the broker's own figures from its ``$SYS/broker/...`` topics, over a connection of its own with
its own broker user (the ACL lets that user read ``$SYS/#`` and nothing else). Mosquitto publishes them every
``sys_interval`` seconds (10 by default); the reader keeps the latest value of each and when it last heard one.
paho reconnects by itself; a message it cannot read is ignored."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from controller.central.readings import SYS_FILTER, BrokerFigures, broker_figures, parse_sys
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client

log = logging.getLogger(__name__)


class SysReader:
    def __init__(self, url: MqttUrl, *, client_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.clock = clock
        self.client_id = url.username or client_id
        self._values: dict[str, float] = {}
        self._heard: float | None = None
        self._lock = threading.Lock()
        self.connected = threading.Event()
        client = paho_client(url, self.client_id)
        client.suppress_exceptions = True
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *_a: self.connected.clear()
        client.on_message = self._on_message
        self.client = client

    def start(self) -> SysReader:
        self.client.connect_async(self.url.host, self.url.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker $SYS connection refused: %s", reason)
            return
        client.subscribe(SYS_FILTER, qos=0)
        self.connected.set()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        parsed = parse_sys(str(message.topic), bytes(message.payload))
        if parsed is None:
            return
        with self._lock:
            self._values[parsed[0]] = parsed[1]
            self._heard = self.clock()

    def figures(self) -> BrokerFigures:
        with self._lock:
            values, heard = dict(self._values), self._heard
        age = None if heard is None else max(0.0, self.clock() - heard)
        return broker_figures(values, connected=self.connected.is_set(), age_s=age)
