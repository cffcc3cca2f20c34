"""Controllers running in-process against the real broker and database of the test.

Each controller connection has its own broker user, as in production (the broker ties client ids to user
names): the default controller ``ctl-1`` logs in as ``controller``, another ``<id>`` as ``controller-<id>``, and
with a shared group the telemetry connection as ``<that user>-telemetry``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.config import parse_config
from controller.service.app import Controller
from edgefleet.localservices import Mosquitto
from edgefleet.localservices.process import free_port
from tests.integration.controller.fakes import FakeAgent, add_user_and_wait
from tests.integration.controller.helpers import MakeAgent, StartController
from tests.integration.controller.webhook import Receiver


@pytest.fixture
def start_controller(mqtt_broker: Mosquitto) -> Iterator[StartController]:
    started: list[Controller] = []

    def start(
        database_url: str, *, policy: dict[str, Any] | None = None, broker: Mosquitto | None = None, **settings: Any
    ) -> Controller:
        broker = broker or mqtt_broker
        user = controller_user(broker, settings.get("controller_id", "ctl-1"))
        mqtt = {"url": broker.url_for(user)}
        if settings.get("shared_group"):
            mqtt["telemetry_url"] = broker.url_for(controller_user(broker, f"{user}-telemetry", prefix=""))
        data: dict[str, Any] = {
            "database_url": database_url,
            "database_migrate": True,  # a fresh database: made by the migrations, as a first start makes it
            "tick_seconds": 0.2,
            # every round a full tick (telemetry taken up at once), not "a full tick while one costs under 20 ms",
            # which a busy machine decides either way; the rounds: test_tick_rounds.py, the scale bench
            "full_tick_seconds": 0,
            "flush_interval_s": 0.05,
            "offline_after_s": 30,
            "mqtt": mqtt,
            "policy": {"cool_hold_s": 1.5, **(policy or {})},
        }
        data.update(settings)
        controller = Controller(parse_config(data, env={})).start()
        started.append(controller)
        assert controller.link.wait_connected(20), "controller did not connect to the broker"
        return controller

    yield start
    for controller in started:
        controller.stop()
    for controller in started:  # controllers keep persistent MQTT sessions: do not leak them into other tests
        end_session(controller)


def controller_user(broker: Mosquitto, name: str, prefix: str = "controller-") -> str:
    """The broker user (role controller) for controller ``name``: ``controller`` for ``ctl-1``, else its own."""
    user = "controller" if name == "ctl-1" else f"{prefix}{name}"
    if user not in broker.users:
        add_user_and_wait(broker, user, role="controller")
    return user


def end_session(controller: Controller) -> None:
    """Drop a stopped controller's persistent session on the broker (a clean start with no expiry)."""
    url = controller.link.url
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=controller.link.client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(url.username, url.password)
    try:
        client.connect(url.host, url.port, clean_start=True)
        client.disconnect()
    except OSError:
        pass  # the test's broker is gone: so is the session


@pytest.fixture
def make_agent(mqtt_broker: Mosquitto) -> Iterator[MakeAgent]:
    agents: list[FakeAgent] = []

    def make(agent_id: str, *, broker: Mosquitto | None = None, **kw: Any) -> FakeAgent:
        broker = broker or mqtt_broker
        if agent_id not in broker.users:
            add_user_and_wait(broker, agent_id)
        agent = FakeAgent(broker.url_for(agent_id), agent_id, **kw)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free port, not started: down until the test starts it."""
    r = Receiver(free_port())
    yield r
    r.stop()
