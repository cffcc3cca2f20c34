"""A controller-side MQTT observer and an in-process agent runtime for the agent service's integration tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig, parse_config
from edge_agent.service.ports import Capabilities, Verdict
from edge_agent.service.runtime import AgentRuntime, EngineFactory
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.codec import decode
from fleet_protocol.messages import Message
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.unit.edge_agent.service.fakes import FakeEngine, FakeHost
from tests.waiting import wait_for

M = TypeVar("M", bound=Message)


class Observer:
    """Subscribes like a controller would and keeps every message (topic, payload, retained flag)."""

    def __init__(self, url: str, topics: list[str], client_id: str = "observer") -> None:
        parsed = MqttUrl.parse(url)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(parsed.username, parsed.password)
        self.client.reconnect_delay_set(1, 2)
        self._topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect_async(parsed.host, parsed.port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("observer could not connect and subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        for topic in self._topics:
            client.subscribe(topic, qos=1)
        if not self._topics:
            self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def payloads(self, topic_suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(topic_suffix)]

    def messages_of(self, agent_id: str, channel: AgentChannel, kind: type[M]) -> list[M]:
        """The agent's messages on ``channel`` received so far, decoded (each must be a ``kind``)."""
        topic = agent_topic(agent_id, channel)
        found: list[M] = []
        for payload in self.payloads(topic):
            message = decode(topic, payload)
            assert isinstance(message, kind), message
            found.append(message)
        return found

    def publish(self, topic: str, payload: bytes, retain: bool = True) -> None:
        wait_for(self.client.is_connected, what="observer connected")
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_config(tmp_path: Path, agent_id: str, mqtt_url: str, **overrides: Any) -> AgentConfig:
    data = {
        "agent_id": agent_id,
        "spool_dir": str(tmp_path / agent_id / "spool"),
        "state_dir": str(tmp_path / agent_id / "state"),
        "settle_seconds": 0.2,
        "scan_interval_s": 0.1,
        "telemetry_interval_s": 0.5,
        "mqtt": {"url": mqtt_url},
        "s3": {"endpoint": "http://127.0.0.1:9", "access_key": "a", "secret_key": "b", "bucket": "rec"},
    } | overrides
    return parse_config(data, env={})


class RunningAgent:
    """An ``AgentRuntime`` pumped by a background thread, as ``edgefleet agent`` would run it."""

    def __init__(
        self,
        config: AgentConfig,
        engine_factory: EngineFactory | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.engine = FakeEngine()

        def fake_factory(_c: AgentConfig, limits: Limits, _on: Callable[[EngineEvent], None]) -> FakeEngine:
            self.engine.limits.append(limits)
            return self.engine

        self.runtime = AgentRuntime(
            config,
            engine_factory=engine_factory or fake_factory,
            host=FakeHost(),
            capabilities=capabilities or Capabilities("Test Pi", 4, 2**30, 2**34, 1e6),
            check_finished=lambda _p: (Verdict.READY, ""),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.runtime.start(time.monotonic())
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.runtime.pump(time.monotonic(), wait_s=0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.runtime.stop(5, time.monotonic())
