"""The compression plan end to end: an agent's birth carries its measured encode rates (the real probe), the
controller stores them, and the assignment's level follows the link rate the agent's telemetry reports."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session

from controller.service.app import Controller
from controller.store import repo
from edge_agent.engine import EngineStats
from edge_agent.service.ports import Capabilities
from edgefleet.localservices import Mosquitto
from fleet_audio.probe import measure_encode_rates
from fleet_plan.compression import encode_rates
from fleet_protocol.assignment import RAW
from tests.integration.controller.fakes import add_user_and_wait
from tests.integration.edge_agent.service.helpers import RunningAgent, agent_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _stored_rates(controller: Controller, agent_id: str) -> list[float]:
    with Session(controller.engine) as session:
        row = repo.get_agent(session, agent_id)
        return list(row.encode_bps_by_level) if row is not None else []


def _level(running: RunningAgent) -> int | None:
    assignment = running.runtime.service.assignment
    return assignment.compression_level if assignment is not None else None


def _reason(running: RunningAgent) -> str:
    assignment = running.runtime.service.assignment
    return assignment.reason if assignment is not None else ""


def test_the_level_follows_the_measured_link(
    tmp_path: Path, mqtt_broker: Mosquitto, database_url: str, start_controller: object
) -> None:
    controller: Controller = start_controller(database_url, policy={"site_uplink_bps": 0})  # type: ignore[operator]
    agent_id = f"pi-compress-{uuid.uuid4().hex[:8]}"  # the broker keeps the last test's retained birth
    add_user_and_wait(mqtt_broker, agent_id)
    probed = measure_encode_rates(seconds_per_level=0.02)
    # A Pi Zero's encoder, from this one's level 5 and the model's curve across levels: 20 ms per level under
    # load can measure level 6 as fast as 5, and the cheapest level within 3 % of the best size would then be 6.
    slow_cpu = encode_rates({5: probed[5] / 100})
    assert slow_cpu is not None
    caps = Capabilities("Test Pi", 1, 2**30, 2**34, slow_cpu[5], encode_bps_by_level=slow_cpu, encode_cores=1.0)
    running = RunningAgent(agent_config(tmp_path, agent_id, mqtt_broker.url_for(agent_id)), capabilities=caps)
    try:
        stored = wait_for(lambda: _stored_rates(controller, agent_id), 60, "the birth's encode rates stored")
        assert stored == pytest.approx([slow_cpu[level] for level in range(9)])
        thin = slow_cpu[8] / 20  # a link far slower than even level 8 encodes: FLAC, level 8's 2 % not worth it
        running.engine.snapshot = replace(EngineStats(), throughput_bps=thin)
        wait_for(lambda: "FLAC 5: link-bound" in _reason(running), 60, "the model's FLAC 5 on a thin link")
        assert _level(running) == 5
        fast = probed[0] * 10  # a link far faster than the encoder: raw
        running.engine.snapshot = replace(EngineStats(), throughput_bps=fast)
        wait_for(lambda: _level(running) == RAW, 60, "raw on a fast link")
        assert "compression raw: the CPU sends raw at" in _reason(running)
    finally:
        running.stop()
