"""The local guard against a real Mosquitto: with the broker gone and the Pi hot, the agent throttles and then
pauses by itself (the controller's thermal steps, ``fleet_plan.thermal``); with the broker and the controller back,
it follows the controller's assignment again. The temperature comes through the agent's ``HostProbe`` seam
(the tests' ``FakeHost``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgefleet.localservices import Mosquitto
from fleet_protocol.assignment import RAW
from fleet_protocol.codec import encode
from fleet_protocol.messages import ControllerState
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus
from tests.integration.edge_agent.service.helpers import Observer, RunningAgent, agent_config
from tests.integration.edge_agent.service.test_agent_mqtt import assignment
from tests.unit.edge_agent.service.fakes import FakeHost
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
AGENT = "it-guard"


def controller_online(observer: Observer) -> None:
    observer.publish(CONTROLLER_STATE_TOPIC, encode(ControllerState(controller_id="ctl", state=AgentStatus.ONLINE)))


def test_alone_and_hot_the_agent_guards_itself_and_hands_back_on_reconnect(
    mqtt_broker_factory: Callable[[], Mosquitto], tmp_path: Path
) -> None:
    broker = mqtt_broker_factory()
    broker.add_user(AGENT)
    controller = Observer(broker.url_for("controller"), [f"edgefleet/v1/agents/{AGENT}/#"], client_id="ctl-guard")
    topic = agent_topic(AGENT, AgentChannel.ASSIGNMENT)
    controller_online(controller)
    controller.publish(topic, assignment(AGENT, 1, concurrency=8, part_size=5 * 2**20, compression_level=5))
    config = agent_config(tmp_path, AGENT, broker.url_for(AGENT), local_guard={"after_s": 2.0})
    agent = RunningAgent(config)
    host = agent.runtime.service.host
    assert isinstance(host, FakeHost)
    limits = agent.engine.limits
    try:
        wait_for(lambda: limits[-1].concurrency == 8 and agent.runtime.service.controller_online, what="v1 applied")
        host.temperature_c = 75.0  # hot: the controller's to judge while it is there
        broker.stop()
        wait_for(lambda: not agent.runtime.link.connected.is_set(), what="disconnect noticed")
        wait_for(
            lambda: (limits[-1].concurrency, limits[-1].compression_level) == (4, 0),
            timeout=30,
            what=lambda: f"the guard throttles (hot: half the uploads, compression 0); limits {limits[-1]}",
        )
        assert agent.runtime.service.guard.active
        host.temperature_c = 83.0
        wait_for(lambda: limits[-1].paused, timeout=60, what=lambda: f"the guard pauses (critical); {limits[-1]}")
        assert limits[-1].compression_level == RAW
        broker.start()
        wait_for(lambda: agent.runtime.link.connected.is_set(), timeout=60, what="reconnect after the broker restart")
        wait_for(controller.client.is_connected, timeout=60, what="controller reconnected")
        controller_online(controller)  # what a controller does on every connect
        wait_for(lambda: not agent.runtime.service.guard.active, timeout=60, what="the guard hands back")
        wait_for(lambda: not limits[-1].paused and limits[-1].concurrency == 8, what="v1 (the controller's) again")
        controller.publish(topic, assignment(AGENT, 2, concurrency=1, paused=True, reason="hot"))
        wait_for(lambda: limits[-1].concurrency == 1 and limits[-1].paused, what="the controller's next one wins")
    finally:
        agent.stop()
        controller.close()
