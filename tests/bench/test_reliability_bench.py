"""Catch-up after a controller restart: what the broker queued for the controller's persistent session is
received, stored and deduplicated; SQLite and PostgreSQL side by side (results: docs/bench/reliability.md).

While the controller is stopped an agent publishes N ``upload_completed`` events (QoS 1) and then every one
again with another ``sent_at`` (as a restarted agent reports a stored file again): 2 N queued deliveries. The
controller starts; measured: time until all 2 N are received and stored, and the rows (must be N).

    EDGEFLEET_BENCH_EVENTS=5000 .venv/bin/pytest -m bench tests/bench/test_reliability_bench.py -s
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from controller.config import parse_config
from controller.service.app import Controller
from edgefleet.localservices import Mosquitto, Postgres, ServiceError
from fleet_protocol.codec import encode
from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind

pytestmark = pytest.mark.bench
N = int(os.environ.get("EDGEFLEET_BENCH_EVENTS", "5000"))
AGENT = "pi-bench"


def publish_all(broker: Mosquitto, events: list[Event]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=AGENT, protocol=mqtt.MQTTv5)
    client.username_pw_set(AGENT, broker.users[AGENT].password)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for info in [client.publish(agent_topic(AGENT, AgentChannel.EVENTS), encode(e), qos=1) for e in events]:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def catch_up(url: str) -> dict[str, float]:
    with Mosquitto() as broker:
        broker.add_user("controller", role="controller")
        broker.add_user(AGENT)
        data = {
            "database_url": url,
            "database_migrate": True,
            "controller_id": "bench",
            "mqtt": {"url": broker.url_for("controller")},
        }
        config = parse_config(data, env={})
        first = Controller(config).start()
        assert first.link.wait_connected(10)
        first.stop()
        events = [
            Event(
                agent_id=AGENT,
                seq=i,
                kind=EventKind.UPLOAD_COMPLETED,
                file=f"r{i}.wav",
                key=f"field/{AGENT}/r{i}.flac",
                original_sha256="ab" * 32,
            )
            for i in range(N)
        ]
        again = [e.model_copy(update={"sent_at": e.sent_at.replace(year=2020)}) for e in events]
        publish_all(broker, events + again)
        began = time.monotonic()
        controller = Controller(config).start()
        try:
            while controller.ingestor.stats.stored < 2 * N and time.monotonic() - began < 300:
                time.sleep(0.01)
            took = time.monotonic() - began
            with controller.engine.connect() as conn:
                rows = conn.execute(text("SELECT count(*) FROM upload_event")).scalar() or 0
            return {"seconds": took, "rows": float(rows), "resumed": float(controller.link.sessions_resumed)}
        finally:
            controller.stop(end_session=True)


def test_catch_up_after_a_controller_restart(tmp_path: Path) -> None:
    results = {"SQLite": catch_up(f"sqlite:///{tmp_path / 'c.db'}")}
    try:
        pg = Postgres()
        pg.ensure_running()
        results["PostgreSQL"] = catch_up(pg.create_database())
        pg.drop_databases()
    except ServiceError as exc:
        print(f"PostgreSQL skipped: {exc}")
    for name, r in results.items():
        print(
            f"{name}: {2 * N} queued deliveries ({N} distinct) stored in {r['seconds']:.2f} s = "
            f"{2 * N / r['seconds']:.0f} msg/s, rows {r['rows']:.0f}, session resumed {r['resumed']:.0f}"
        )
        assert r["rows"] == N
        assert r["resumed"] == 1
    if len(results) == 2:
        print(f"PostgreSQL / SQLite time: {results['PostgreSQL']['seconds'] / results['SQLite']['seconds']:.2f}")
