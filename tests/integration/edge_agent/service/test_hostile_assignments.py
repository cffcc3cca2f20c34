"""The agent under hostile assignments, on the real broker with the real engine and S3 (docs/protocol.md).

More than 10,000 payloads generated from the ``Assignment`` model (``tests/hostile.py``: every field at and
around its bounds, duplicates, reordering, and about 40 % invalid ones) are published by the controller user
to one running agent's assignment topic. The agent applies the valid ones in order, counts and drops the rest,
and afterwards applies a normal assignment, uploads a recording and reports telemetry as if nothing happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent.engine import Limits
from edge_agent.service.main import real_engine
from edgefleet.localservices import Mosquitto, SeaweedS3
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment, Event, Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.hostile import Hostile, burst, collect
from tests.integration.edge_agent.service.helpers import Observer, RunningAgent, agent_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

AGENT = "pi-target"
AT_LEAST = 10_000
WAIT_S = 240.0  # a ceiling on waiting only (a loaded 2-core CI box)
MiB = 1 << 20
VERSION = 10**6  # the normal assignment's (lower than hostile ones before it: the agent applies it all the same)


@pytest.fixture(scope="module")
def corpus() -> list[Hostile]:
    return collect(burst(Assignment, AGENT), AT_LEAST)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    own = Mosquitto(directory=tmp_path / "broker", persistence=False)  # never restarted
    for name, role in (("controller", "controller"), ("observer", "controller"), (AGENT, "agent")):
        own.add_user(name, role=role)  # type: ignore[arg-type]
    with own:
        yield own


@pytest.fixture
def agent(tmp_path: Path, broker: Mosquitto, s3_server: SeaweedS3) -> Iterator[RunningAgent]:
    s3 = {
        "endpoint": s3_server.endpoint,
        "access_key": s3_server.access_key,
        "secret_key": s3_server.secret_key,
        "bucket": s3_server.bucket,
        "prefix": "hostile",
    }
    config = agent_config(tmp_path, AGENT, broker.url_for(AGENT), s3=s3, min_free_bytes=0)
    running = RunningAgent(config, engine_factory=real_engine)
    wait_for(running.runtime.link.connected.is_set, 60, "the agent connected")
    yield running
    running.stop()


def publish_all(broker: Mosquitto, payloads: list[bytes]) -> int:
    """As the controller user, QoS 1, in order; returns how many the broker acknowledged."""
    client = paho_client(MqttUrl.parse(broker.url_for("controller")), "controller")
    client.max_queued_messages_set(0)
    acked: list[bool] = []
    client.on_publish = lambda _c, _u, _mid, reason, _p: acked.append(not reason.is_failure)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        topic = agent_topic(AGENT, AgentChannel.ASSIGNMENT)
        for payload in payloads:
            assert client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS
        wait_for(lambda: len(acked) >= len(payloads), WAIT_S, lambda: f"PUBACKs: {len(acked)} of {len(payloads)}")
    finally:
        client.disconnect()
        client.loop_stop()
    assert all(acked)
    return len(acked)


def operative(message: Assignment | None) -> dict[str, object] | None:
    return None if message is None else message.model_dump(exclude={"seq", "sent_at"})


def test_ten_thousand_hostile_assignments_then_business_as_usual(
    broker: Mosquitto, agent: RunningAgent, s3_server: SeaweedS3, tmp_path: Path, corpus: list[Hostile]
) -> None:
    observer = Observer(broker.url_for("observer"), [f"edgefleet/v1/agents/{AGENT}/#"], "observer")
    service = agent.runtime.service
    topic = agent_topic(AGENT, AgentChannel.ASSIGNMENT)
    try:
        started = time.monotonic()
        assert publish_all(broker, [h.payload for h in corpus]) >= AT_LEAST
        invalid = sum(not h.valid and h.payload != b"" for h in corpus)  # (empty: a cleared retained assignment)
        last_valid = next(decode(topic, h.payload) for h in reversed(corpus) if h.valid)
        assert isinstance(last_valid, Assignment)
        expected = operative(last_valid)

        def all_handled() -> bool:  # (in order: the broker keeps one publisher's order on a topic)
            return service.counters.invalid_messages >= invalid and operative(service.assignment) == expected

        wait_for(
            all_handled,
            WAIT_S,
            lambda: f"{invalid} invalid counted ({service.counters}), the last valid one applied",
        )
        print(f"{len(corpus)} assignments ({invalid} invalid) handled in {time.monotonic() - started:.1f} s")
        assert service.counters.invalid_messages == invalid
        assert service.counters.failed_messages == 0

        normal = Assignment(agent_id=AGENT, seq=1, version=VERSION, concurrency=2, part_size=5 * MiB, reason="normal")
        publish_all(broker, [encode(normal)])
        wait_for(lambda: service.limits == Limits(concurrency=2, part_size=5 * MiB), WAIT_S, "the normal assignment")

        recording = write_wav(agent.runtime.config.spool_dir / "after-the-storm.wav", seconds=4, seed=11)
        events_topic = agent_topic(AGENT, AgentChannel.EVENTS)

        def completed() -> list[Event]:
            events = [decode(events_topic, p) for p in observer.payloads(events_topic)]
            return [e for e in events if isinstance(e, Event) and e.kind == EventKind.UPLOAD_COMPLETED]

        [done] = wait_for(completed, WAIT_S, "the recording uploaded")
        assert s3_server.client().stat_object(s3_server.bucket, done.key).size == done.stored_bytes
        wait_for(lambda: not recording.exists(), WAIT_S, "retention after the verified upload")

        telemetry_topic = agent_topic(AGENT, AgentChannel.TELEMETRY)

        def reports_normal() -> bool:
            reports = [decode(telemetry_topic, p) for p in observer.payloads(telemetry_topic)]
            return any(isinstance(t, Telemetry) and t.assignment_version == VERSION for t in reports)

        wait_for(reports_normal, WAIT_S, "telemetry naming the normal assignment")
        assert service.counters.failed_messages == 0
    finally:
        observer.close()
