"""The services the roles configured, started from the rendered files, with the credentials the roles generated."""

from __future__ import annotations

import importlib.util
import io
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgefleet.localservices.process import start_process, stop_process
from fleet_protocol import AgentChannel, AgentStatus, State, agent_topic, decode
from tests.integration.ansible.conftest import CentralServices
from tests.integration.ansible.deployment import AGENTS, CENTRAL, Deployment
from tests.integration.ansible.mqtt_probe import Probe, url_with_password

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
ME, OTHER = AGENTS


def _agent(deployment: Deployment, agent: str) -> dict[str, Any]:
    return deployment.toml(agent, "/etc/edgefleet/agent.toml")


def _controller_url(deployment: Deployment) -> str:
    return str(deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["mqtt"]["url"])


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


def _connect(probes: list[Probe], url: str) -> Probe:
    probe = Probe(url)
    probes.append(probe)
    assert probe.connect() == 0, f"cannot connect as {probe.url.username}"
    return probe


def test_agent_writes_only_its_own_topics(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    payload = b'{"probe": true}'
    for channel in (AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.TELEMETRY, AgentChannel.EVENTS):
        assert me.publish(agent_topic(ME, channel), payload) < 0x80, channel  # 0 or 0x10 "no subscribers"
    assert me.publish(agent_topic(ME, AgentChannel.ASSIGNMENT), payload) == NOT_AUTHORIZED
    assert me.publish(agent_topic(OTHER, AgentChannel.STATE), payload) == NOT_AUTHORIZED
    assert me.publish("edgefleet/v1/controller/state", payload) == NOT_AUTHORIZED


def test_agent_reads_only_its_own_assignment(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    controller = _connect(probes, _controller_url(deployment))
    for agent in AGENTS:
        assert controller.publish(agent_topic(agent, AgentChannel.ASSIGNMENT), agent.encode(), retain=True) < 0x80
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    me.subscribe(agent_topic(OTHER, AgentChannel.ASSIGNMENT))  # granted by Mosquitto, never delivered
    me.subscribe(agent_topic(ME, AgentChannel.ASSIGNMENT))
    first = me.messages.get(timeout=10)
    assert (first.topic, first.payload) == (agent_topic(ME, AgentChannel.ASSIGNMENT), ME.encode())
    with pytest.raises(queue.Empty):
        me.messages.get(timeout=1.0)
    for agent in AGENTS:  # clear the retained probes so a real agent never sees them
        assert controller.publish(agent_topic(agent, AgentChannel.ASSIGNMENT), b"", retain=True) < 0x80


def test_wrong_password_is_refused(deployment: Deployment, central_services: CentralServices) -> None:
    probe = Probe(url_with_password(_agent(deployment, ME)["mqtt"]["url"], "not-the-password"))
    try:
        assert probe.connect() != 0
    finally:
        probe.close()


def test_agent_s3_key_is_limited_to_the_bucket(deployment: Deployment, central_services: CentralServices) -> None:
    from minio import Minio
    from minio.error import S3Error

    controller_s3 = deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["s3"]
    host = f"127.0.0.1:{deployment.ports['s3']}"
    admin = Minio(host, controller_s3["access_key"], controller_s3["secret_key"], secure=False, region="us-east-1")
    if not admin.bucket_exists("elsewhere"):
        admin.make_bucket("elsewhere")
    s3 = _agent(deployment, ME)["s3"]
    agent = Minio(host, s3["access_key"], s3["secret_key"], secure=False, region="us-east-1")
    key = f"{s3['prefix']}/{ME}/probe.txt"
    agent.put_object(s3["bucket"], key, io.BytesIO(b"hello"), 5)
    assert agent.get_object(s3["bucket"], key).read() == b"hello"
    with pytest.raises(S3Error) as denied:
        agent.put_object("elsewhere", key, io.BytesIO(b"hello"), 5)
    assert denied.value.code == "AccessDenied"
    wrong = Minio(host, s3["access_key"], "wrong-secret", secure=False, region="us-east-1")
    with pytest.raises(S3Error):
        wrong.put_object(s3["bucket"], key, io.BytesIO(b"x"), 1)


AGENT_SERVICE_BUILT = importlib.util.find_spec("edge_agent.service.main") is not None


@pytest.mark.skipif(not AGENT_SERVICE_BUILT, reason="edge_agent.service.main (edgefleet agent) is not built yet")
def test_installed_agent_starts_from_its_unit_and_goes_online(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    controller = _connect(probes, _controller_url(deployment))
    controller.subscribe(agent_topic(ME, AgentChannel.STATE))
    log = central_services.log_dir / f"{ME}-agent.log"
    agent = start_process(deployment.exec_start(ME, "edgefleet-agent.service"), log)
    try:
        deadline = time.monotonic() + 30
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or agent.poll() is not None:
                pytest.fail(f"no 'online' state from {ME} (exit code {agent.poll()}):\n{log.read_text()[-3000:]}")
            try:
                msg = controller.messages.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if msg.payload.startswith(b"{") and b'"probe"' not in msg.payload:
                state = decode(msg.topic, bytes(msg.payload))
                if isinstance(state, State) and state.state == AgentStatus.ONLINE:
                    break
    finally:
        stop_process(agent)
