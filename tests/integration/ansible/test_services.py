"""The services the roles configured, started from the rendered files, with the credentials the roles generated."""

from __future__ import annotations

import io
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fleet_protocol import (
    CONTROLLER_STATE_TOPIC,
    AgentChannel,
    AgentStatus,
    Assignment,
    State,
    agent_topic,
    decode,
    decode_controller_state,
)
from tests.integration.ansible.conftest import CentralServices, Fleet
from tests.integration.ansible.deployment import AGENTS, CENTRAL, Deployment
from tests.integration.ansible.mqtt_probe import Probe, url_with_password

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
EXAMPLE_ADMIN_PASSWORD = "example-admin-password"  # its bcrypt hash is in the example vault
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


def _wait_for(probe: Probe, accept: Callable[[str, bytes], bool], fleet: Fleet, what: str, timeout: float = 45) -> None:
    """Read ``probe``'s messages until ``accept(topic, payload)``; fail with the service logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = {name: p.returncode for name, p in fleet.processes.items() if p.poll() is not None}
        if dead:
            pytest.fail(f"{what}: exited {dead}:\n" + "\n".join(fleet.log_tail(name) for name in dead))
        try:
            msg = probe.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        if msg.payload and accept(msg.topic, bytes(msg.payload)):
            return
    pytest.fail(f"{what}: nothing after {timeout} s\n" + "\n".join(f"--- {n}\n{fleet.log_tail(n)}" for n in fleet.logs))


def test_installed_controller_goes_online_and_agents_may_see_it(
    deployment: Deployment, fleet: Fleet, probes: list[Probe]
) -> None:
    agent_view = _connect(probes, _agent(deployment, OTHER)["mqtt"]["url"])  # any agent may read it
    agent_view.subscribe(CONTROLLER_STATE_TOPIC)

    def online(topic: str, payload: bytes) -> bool:
        return decode_controller_state(topic, payload).state == AgentStatus.ONLINE

    _wait_for(agent_view, online, fleet, "controller state online")


def test_installed_agent_goes_online(deployment: Deployment, fleet: Fleet, probes: list[Probe]) -> None:
    controller = _connect(probes, _controller_url(deployment))
    controller.subscribe(agent_topic(ME, AgentChannel.STATE))

    def online(topic: str, payload: bytes) -> bool:
        state = decode(topic, payload)
        return isinstance(state, State) and state.state == AgentStatus.ONLINE

    _wait_for(controller, online, fleet, f"{ME} state online")


def test_installed_controller_assigns_the_installed_agent(
    deployment: Deployment, fleet: Fleet, probes: list[Probe]
) -> None:
    watcher = _connect(probes, _controller_url(deployment))
    watcher.subscribe(agent_topic(ME, AgentChannel.ASSIGNMENT))

    def assignment(topic: str, payload: bytes) -> bool:
        return isinstance(decode(topic, payload), Assignment)

    _wait_for(watcher, assignment, fleet, f"assignment for {ME}")


def test_installed_dashboard_lists_the_agent(deployment: Deployment, fleet: Fleet) -> None:
    base = f"http://127.0.0.1:{deployment.ports['dashboard']}"
    deadline = time.monotonic() + 45
    seen: object = None
    with httpx.Client(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if fleet.processes["dashboard"].poll() is not None:
                pytest.fail(f"dashboard exited:\n{fleet.log_tail('dashboard')}")
            try:
                login = client.post("/api/login", json={"username": "admin", "password": EXAMPLE_ADMIN_PASSWORD})
            except httpx.TransportError:
                time.sleep(0.3)
                continue
            assert login.status_code == 200, login.text
            seen = client.get("/api/agents").json()
            if ME in str(seen):
                return
            time.sleep(0.5)
    pytest.fail(f"{ME} not on the dashboard: {seen}\n{fleet.log_tail('dashboard')}")
