"""The whole system as separate processes, for end-to-end tests: broker, S3, controller, dashboard, agents.

Each agent reaches S3 through its own :class:`FaultProxy`, so network cuts hit one agent at a time. The
broker and the S3 server are the real local services; the controller, the dashboard and every agent are
``edgefleet`` child processes in their own process groups (the demo's supervisor), with the configs the demo
generates plus the test's changes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgefleet.demo import parts
from edgefleet.demo.layout import (
    DASHBOARD_USER,
    DemoState,
    Endpoints,
    Paths,
    agent_settings,
    controller_settings,
    merged,
    write_toml,
)
from edgefleet.demo.provision import provision
from edgefleet.demo.supervisor import Supervisor, start_controller, start_dashboard
from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.localservices.process import free_port
from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel, agent_filter
from tests.faultproxy import FaultProxy

PREFIX = "e2e"
#: broker users for the tests' subscribers
OBSERVERS = ("event-recorder", "observer")


@dataclass
class System:
    root: Path
    agent_ids: list[str]
    agent_changes: Mapping[str, object] = field(default_factory=dict)
    controller_changes: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.paths = Paths(self.root)
        self.state = DemoState.new()
        self.state.dashboard_port = free_port()
        self.broker = Mosquitto(directory=self.root / "mosquitto")
        self.s3 = SeaweedS3(
            directory=self.root / "s3", access_key=self.state.s3_access_key, secret_key=self.state.s3_secret_key
        )
        # a broker user and an S3 identity per agent and for the controller, as the demo and production have
        provision(self.state, self.broker, self.s3, self.agent_ids, prefix=PREFIX)
        # the tests' own subscribers: a user each (the broker ties the client id to the user), made before the
        # broker starts (a config reload can crash Mosquitto 2.0.11 when persistence is on)
        for observer in OBSERVERS:
            self.broker.add_user(observer, role="controller")
        self.supervisor = Supervisor(self.root)
        self.proxies: dict[str, FaultProxy] = {}
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        self.paths.database.parent.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> System:
        self.broker.start()
        self.s3.start()
        ends = self.endpoints(self.s3.endpoint)
        settings = merged(controller_settings(self.state, ends, self.paths), self.controller_changes)
        conf = write_toml(self.paths.configs / "controller.toml", settings)
        start_controller(self.supervisor, conf)
        start_dashboard(self.supervisor, self.state, self.paths, bcrypt_rounds=4)
        for agent_id in self.agent_ids:
            proxy = FaultProxy(self.s3.host, self.s3.port)
            self.proxies[agent_id] = proxy
            self.supervisor.start(agent_id, parts.AGENT.argv("--config", str(self._agent_config(agent_id, proxy))))
        return self

    def close(self) -> None:
        self.supervisor.stop_all()
        for proxy in self.proxies.values():
            proxy.close()
        self.s3.stop(hard=True)  # the end of the scenario: its data goes with it, no ~2 s graceful shutdown
        self.s3.close()
        self.broker.close()

    def endpoints(self, s3_endpoint: str) -> Endpoints:
        return Endpoints(self.broker.host, self.broker.port, s3_endpoint, self.s3.bucket)

    def _agent_config(self, agent_id: str, proxy: FaultProxy) -> Path:
        ends = self.endpoints(f"http://{proxy.address}")
        home = self.paths.agent_dir(agent_id)
        changes = merged(
            {"retention": "move", "done_dir": str(home / "done"), "s3": {"prefix": PREFIX}}, self.agent_changes
        )
        settings = merged(agent_settings(self.state, ends, self.paths, agent_id, "e2e"), changes)
        return write_toml(self.paths.configs / f"agent-{agent_id}.toml", settings)

    # -- handles ------------------------------------------------------------------------------------------
    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.state.dashboard_port}/"

    def spool(self, agent_id: str) -> Path:
        return self.paths.agent_dir(agent_id) / "spool"

    def done(self, agent_id: str) -> Path:
        return self.paths.agent_dir(agent_id) / "done"

    def dashboard(self) -> httpx.Client:
        client = httpx.Client(base_url=self.dashboard_url, timeout=10)
        answer = client.post("/api/login", json={"username": DASHBOARD_USER, "password": self.state.dashboard_password})
        answer.raise_for_status()
        return client

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.paths.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def wait_for(check: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passed; returns its last verdict."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def fleet_json(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/api/fleet")
    answer.raise_for_status()
    return dict(json.loads(answer.text))


class EventRecorder:
    """A reference subscriber to every agent's events with a PERSISTENT MQTT v5 session (clean_start=False,
    session expiry 1 h): the broker keeps its QoS 1 messages while it is away, also across a broker restart
    (Mosquitto persistence). What it receives is what a correctly configured controller would receive."""

    def __init__(self, broker: Mosquitto, client_id: str = "e2e-event-recorder") -> None:
        user = broker.users["event-recorder"]
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user.name, user.password)
        self.client.reconnect_delay_set(1, 2)
        topic = agent_filter(AgentChannel.EVENTS)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("event recorder could not subscribe")

    def _on_message(self, _client: object, _userdata: object, message: Any) -> None:
        with self._lock:
            self.payloads.append(bytes(message.payload))

    def events(self) -> list[Event]:
        with self._lock:
            return [Event.model_validate_json(p) for p in self.payloads]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
