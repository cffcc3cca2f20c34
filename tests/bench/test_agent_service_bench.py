"""Agent service benchmarks (run with ``-m bench -s``); results in docs/bench/agent-service.md.

1. Spool scan: one ``list_spool`` + ``SpoolTracker.observe`` over 10,000 files, against a plain
   ``Path.glob`` + ``stat()`` listing of the same folder (the peer) in the same run.
2. Assignment reaction: a controller publishes a new retained assignment; time until the agent has called
   ``Engine.set_limits`` with it, against the bare MQTT delivery time to a plain paho subscriber (the peer) of
   the same messages on the same broker.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from functools import partial

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.service.spool import SpoolTracker, list_spool
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.codec import encode
from fleet_protocol.messages import Assignment
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.integration.edge_agent.service.helpers import Observer, RunningAgent, agent_config
from tests.waiting import wait_for

pytestmark = pytest.mark.bench
FILES = 10_000
ROUNDS = 200


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_spool_scan_cost(tmp_path):
    for i in range(FILES):
        (tmp_path / f"rec-{i:05d}.wav").write_bytes(b"RIFF")
    tracker = SpoolTracker(settle_seconds=30)
    ours = _best(lambda: tracker.observe(list_spool(tmp_path, [".wav"]), time.monotonic()))
    peer = _best(lambda: [(p.name, p.stat().st_size) for p in tmp_path.glob("*.wav")])
    print(
        f"\nspool scan of {FILES} files: ours {ours * 1e3:.1f} ms ({ours / FILES * 1e6:.2f} µs/file), "
        f"Path.glob+stat {peer * 1e3:.1f} ms, ratio ours/peer {ours / peer:.2f}"
    )
    assert ours < 1.0


def applied(agent: RunningAgent, version: int) -> bool:
    current = agent.runtime.service.assignment
    return current is not None and current.version == version


def test_assignment_reaction(mqtt_broker, tmp_path):
    agent_id = "bench-assign"
    if agent_id not in mqtt_broker.users:
        mqtt_broker.add_user(agent_id)
    topic = agent_topic(agent_id, AgentChannel.ASSIGNMENT)
    received: dict[int, float] = {}
    got = threading.Event()
    url = MqttUrl.parse(mqtt_broker.url_for("controller"))
    peer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-peer", protocol=mqtt.MQTTv5)
    peer.username_pw_set(url.username, url.password)

    def on_message(_c, _u, msg):
        if msg.payload:
            received[Assignment.model_validate_json(msg.payload).version] = time.perf_counter()
            got.set()

    peer.on_message = on_message
    peer.connect(url.host, url.port)
    peer.subscribe(topic, qos=1)
    peer.loop_start()
    agent = RunningAgent(agent_config(tmp_path, agent_id, mqtt_broker.url_for(agent_id)))
    applied_at: list[float] = []
    original_set_limits = agent.engine.set_limits

    def timed_set_limits(limits):  # stamps the moment the engine gets the new limits
        applied_at.append(time.perf_counter())
        original_set_limits(limits)

    agent.engine.set_limits = timed_set_limits  # type: ignore[method-assign]
    controller = Observer(mqtt_broker.url_for("controller"), [], "bench-controller")
    agent_lat, peer_lat = [], []
    try:
        wait_for(agent.runtime.link.connected.is_set, what="agent connected")
        time.sleep(0.5)
        for version in range(1, ROUNDS + 1):
            payload = encode(
                Assignment(
                    agent_id=agent_id,
                    seq=version,
                    version=version,
                    concurrency=1 + version % 4,
                    part_size=5 * 1024 * 1024,
                )
            )
            sent = time.perf_counter()
            controller.client.publish(topic, payload, qos=1, retain=True)
            wait_for(partial(applied, agent, version), what=f"v{version}")
            agent_lat.append(applied_at[-1] - sent)
            wait_for(partial(received.__contains__, version), what=f"peer v{version}")
            peer_lat.append(received[version] - sent)
    finally:
        agent.stop()
        controller.publish(topic, b"")
        controller.close()
        peer.loop_stop()
        peer.disconnect()

    def pct(values: list[float], q: int) -> float:
        return float(statistics.quantiles(values, n=100)[q - 1]) * 1e3

    print(
        f"\nassignment reaction over {ROUNDS} assignments (ms): agent applied p50 {pct(agent_lat, 50):.1f} "
        f"p99 {pct(agent_lat, 99):.1f}; bare MQTT delivery p50 {pct(peer_lat, 50):.1f} p99 {pct(peer_lat, 99):.1f}"
    )
    assert pct(agent_lat, 99) < 1000
