"""Controllers running in-process against the real broker and database of the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.config import ControllerConfig, parse_config
from controller.service.app import Controller
from edgefleet.localservices import Mosquitto
from tests.integration.controller.fakes import FakeAgent


@pytest.fixture
def start_controller(mqtt_broker: Mosquitto) -> Iterator[Callable[..., Controller]]:
    started: list[Controller] = []

    def start(
        database_url: str, *, policy: dict[str, Any] | None = None, broker: Mosquitto | None = None, **settings: Any
    ) -> Controller:
        data: dict[str, Any] = {
            "database_url": database_url,
            "tick_seconds": 0.2,
            "flush_interval_s": 0.05,
            "offline_after_s": 30,
            "mqtt": controller_mqtt(broker or mqtt_broker, settings),
            "policy": {"cool_hold_s": 1.5, **(policy or {})},
        }
        data.update(settings)
        controller = Controller(parse_config(data, env={})).start()
        started.append(controller)
        assert controller.link.wait_connected(10), "controller did not connect to the broker"
        return controller

    yield start
    for controller in started:
        controller.stop()
    for controller in started:  # controllers keep persistent MQTT sessions: do not leak them into other tests
        end_session(controller)


def controller_mqtt(broker: Mosquitto, settings: dict[str, Any]) -> dict[str, str]:
    """The broker ties a client id to its user: every controller, and its shared telemetry connection, logs in
    as a user of its own (a second connection of one user would take over the first)."""
    user = f"controller-{settings.get('controller_id', 'ctl-1')}"
    mqtt_settings = {"url": broker.login(user, role="controller")}
    if settings.get("shared_group"):
        if "telemetry_url" not in ControllerConfig.model_fields["mqtt"].annotation.model_fields:  # type: ignore[union-attr]
            pytest.skip("a shared group needs the controller's mqtt.telemetry_url (a user per connection)")
        mqtt_settings["telemetry_url"] = broker.login(f"{user}-telemetry", role="controller")
    return mqtt_settings


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
def make_agent(mqtt_broker: Mosquitto) -> Iterator[Callable[..., FakeAgent]]:
    agents: list[FakeAgent] = []

    def make(agent_id: str, *, broker: Mosquitto | None = None, **kw: Any) -> FakeAgent:
        broker = broker or mqtt_broker
        if agent_id not in broker.users:
            broker.add_user(agent_id)
        agent = FakeAgent(broker.url_for(agent_id), agent_id, **kw)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()
