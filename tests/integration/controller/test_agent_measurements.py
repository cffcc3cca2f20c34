"""The agent's own measurements end to end: a real agent process (real engine, Mosquitto, SeaweedFS) uploads a
recording; its telemetry carries its MQTT round trip, S3 time to first byte, CPU and RSS; a real controller
stores them (latest and history); the dashboard's read model and /metrics show them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from controller.policy import PolicyConfig
from controller.service.app import Controller
from controller.store.models import Agent
from dashboard import queries
from dashboard.metrics import fleet_metrics
from edgefleet.localservices import Mosquitto, SeaweedS3
from tests.corpus import write_wav
from tests.integration.edge_agent.service.test_agent_process import write_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
AGENT = "it-measures"
OWN = ("mqtt_rtt_s", "s3_ttfb_s", "process_cpu_percent", "process_rss_bytes")


def test_an_agents_own_measurements_reach_the_store_and_the_dashboard(
    start_controller: Callable[..., Controller], mqtt_broker: Mosquitto, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    controller = start_controller(f"sqlite:///{tmp_path / 'c.db'}")
    if AGENT not in mqtt_broker.users:
        mqtt_broker.add_user(AGENT)
    (tmp_path / "spool").mkdir()
    config = write_config(tmp_path, AGENT, mqtt_broker, s3_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "edgefleet.cli", "agent", "--config", str(config)], stdout=log, stderr=log, env=env
        )
        try:
            write_wav(tmp_path / "spool" / "dusk.wav", seconds=8, seed=3)

            def measured() -> Agent | None:
                with Session(controller.engine) as session:
                    row = session.get(Agent, AGENT)
                    return row if row is not None and all(getattr(row, k) is not None for k in OWN) else None

            def log_tail() -> str:
                return (tmp_path / "agent.log").read_text()[-2000:]

            row = wait_for(measured, 90, lambda: f"all four measurements stored ({log_tail()})")
        finally:
            agent.kill()
            agent.wait(10)
    assert 0 < row.mqtt_rtt_s < 10
    assert 0 < row.s3_ttfb_s < 30
    assert row.process_cpu_percent >= 0
    assert row.process_rss_bytes > 10 << 20  # a Python process with numpy and pyflac
    now = datetime.now(UTC)
    with Session(controller.engine) as session:
        history = queries.telemetry(session, AGENT, now - timedelta(minutes=10))
        detail = queries.agent_detail(session, AGENT, now, 60)
    assert any(p.s3_ttfb_s is not None and p.mqtt_rtt_s is not None for p in history)
    assert detail is not None
    assert detail.row.process_rss_bytes is not None
    with Session(controller.engine) as session:
        snapshot = queries.fleet_snapshot(session, now, 60, PolicyConfig())
    series = {m.name: m.samples for m in fleet_metrics(snapshot)}
    for name in ("edgefleet_agent_mqtt_rtt_seconds", "edgefleet_agent_s3_ttfb_seconds"):
        assert [sample.labels["agent"] for sample in series[name]] == [AGENT]
