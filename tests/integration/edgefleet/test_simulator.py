"""Simulated Pis on a real Mosquitto: they report like real agents and cool down when the controller throttles."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from edgefleet.demo.layout import DemoState, credentials_document, write_toml
from edgefleet.sim.fleet import Fleet, FleetOptions, agent_ids
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment, Birth, Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import STICKY_SHIFT, EventKind
from fleet_protocol.vocabulary import ThrottleBit as Bit
from tests.integration.edge_agent.service.helpers import Observer
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_hot_simulated_pi_heats_under_load_and_cools_when_throttled(mqtt_broker, tmp_path):
    prefix = f"ith{os.getpid()}"
    ids = agent_ids(2, prefix)
    for agent_id in ids:
        mqtt_broker.add_user(agent_id, "pw")
    observer = Observer(mqtt_broker.url_for("controller"), ["edgefleet/v1/agents/#"], "obs-sim")
    clock = FakeClock()
    options = FleetOptions(
        agents=2,
        mqtt_url=MqttUrl.parse(mqtt_broker.url_for("controller")),
        root=tmp_path,
        agent_password="pw",
        hot=1,
        id_prefix=prefix,
        telemetry_interval_s=5.0,
    )
    fleet = Fleet(options, clock=clock)
    hot, normal = fleet.agents
    assert hot.hot
    assert not normal.hot
    for agent in fleet.agents:
        agent.start(clock.now)

    def run_for(seconds: float) -> None:
        end = clock.now + seconds
        while clock.now < end:
            clock.now += 5.0
            for agent in fleet.agents:
                agent.step(clock.now)

    def assign(version: int, **kw: object) -> None:
        fields: dict[str, object] = {"concurrency": 4, "part_size": 8 * MiB} | kw
        msg = Assignment(agent_id=hot.agent_id, seq=version, version=version, **fields)  # type: ignore[arg-type]
        observer.publish(agent_topic(hot.agent_id, AgentChannel.ASSIGNMENT), encode(msg))

        def applied() -> bool:
            hot.runtime.pump(clock.now)
            return hot.runtime.service.assignment is not None and hot.runtime.service.assignment.version == version

        wait_for(applied, what=f"assignment v{version} applied")

    def telemetry(agent_id: str) -> list[Telemetry]:
        return observer.messages_of(agent_id, AgentChannel.TELEMETRY, Telemetry)

    try:
        wait_for(lambda: all(observer.payloads(agent_topic(i, AgentChannel.BIRTH)) for i in ids), what="two births")
        birth_topic = agent_topic(hot.agent_id, AgentChannel.BIRTH)
        birth = decode(birth_topic, observer.payloads(birth_topic)[0])
        assert isinstance(birth, Birth)
        assert birth.simulated
        assert birth.model == "Raspberry Pi 4 Model B Rev 1.4"
        assign(1, concurrency=8, compression_level=8, bandwidth_bps=MiB)  # the cap keeps the backlog from draining
        run_for(600)

        def seen(version: int, ok: Callable[[Telemetry], bool]) -> list[Telemetry]:
            return [t for t in telemetry(hot.agent_id) if t.assignment_version == version and ok(t)]

        # (telemetry is QoS 0 and arrives asynchronously: wait until the observer has it)
        [heated, *_] = wait_for(
            lambda: seen(1, lambda t: bool(t.throttled & Bit.THROTTLED)), what="firmware throttling"
        )
        assert (heated.temperature_c or 0) >= 80.0
        assert heated.throttled & (Bit.THROTTLED << STICKY_SHIFT)
        assert heated.active_uploads == 8
        assign(2, paused=True)
        run_for(900)
        cooled = wait_for(lambda: seen(2, lambda t: (t.temperature_c or 99) < 60.0), what="cooled telemetry")[-1]
        assert cooled.throttled & (Bit.THROTTLED << STICKY_SHIFT)  # "has been throttled" stays until reboot
        assert not cooled.throttled & Bit.THROTTLED
        assert cooled.active_uploads == 0
        others = telemetry(normal.agent_id)
        assert others
        assert max(t.temperature_c or 0 for t in others) < 70.0
    finally:
        for agent in fleet.agents:
            agent.stop(clock.now)
        observer.publish(agent_topic(hot.agent_id, AgentChannel.ASSIGNMENT), b"")
        observer.close()


def test_simulate_command_uploads_generated_recordings(mqtt_broker, s3_server_factory, tmp_path):
    """As the demo runs it: every agent logs in with its own broker password and its own S3 identity, both from a
    private credentials file (no secret on the command line or in the environment); real uploads."""
    prefix = f"itu{os.getpid()}"
    ids = agent_ids(2, prefix)
    s3 = s3_server_factory(agents=[(agent_id, "simtest") for agent_id in ids])
    state = DemoState.new()
    for agent_id in ids:
        mqtt_broker.add_user(agent_id, state.agent_password(agent_id))
        identity = s3.identities[f"agent-{agent_id}"]
        state.s3_keys[agent_id] = [identity.access_key, identity.secret_key]
    credentials = write_toml(tmp_path / "credentials.toml", credentials_document(state, dict.fromkeys(ids, "lab")))
    observer = Observer(mqtt_broker.login("obs-simcmd", role="controller"), ["edgefleet/v1/agents/+/#"], "obs-simcmd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env |= {"EDGEFLEET_S3_ENDPOINT": s3.endpoint, "EDGEFLEET_S3_BUCKET": s3.bucket}
    server = f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}"
    argv = ["simulate", "--agents", "2", "--upload", "--duration", "12", "--mqtt-url", server]
    argv += ["--credentials", str(credentials), "--prefix", "simtest", "--record-seconds", "4"]
    argv += ["--record-every", "100", "--dir", str(tmp_path)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edgefleet.cli", *argv, "--id-prefix", prefix],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        objects = s3.client().list_objects(s3.bucket, prefix="simtest/", recursive=True)
        keys = sorted(o.object_name for o in objects)
        assert [k.split("/")[1] for k in keys] == ids, done.stderr[-3000:]
        assert all(k.endswith(".flac") for k in keys)
        assert not list(tmp_path.glob("*/spool/*.wav"))  # deleted after the verified upload
        for agent_id in ids:  # each agent logged in as itself: the ACL let its messages through
            events = [
                decode(agent_topic(agent_id, AgentChannel.EVENTS), p) for p in observer.payloads(f"{agent_id}/events")
            ]
            assert EventKind.UPLOAD_COMPLETED in [e.kind for e in events]  # type: ignore[attr-defined]
            births = observer.payloads(f"{agent_id}/birth")
            assert decode(agent_topic(agent_id, AgentChannel.BIRTH), births[-1]).site == "lab"  # type: ignore[attr-defined]
    finally:
        observer.close()
