"""The local guard in the agent service: no controller contact for ``after_s`` → the shared thermal steps on the
last assignment from the agent's own readings; contact back → the controller's assignment again."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.service.config import LocalGuardSection
from edge_agent.service.guard import LocalGuard
from fleet_plan.thermal import CRITICAL, HOT, NORMAL, WARM, Reading
from fleet_protocol.assignment import RAW
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, ControllerState, Telemetry
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC
from fleet_protocol.vocabulary import AgentStatus
from tests.unit.edge_agent.service.test_agent import ASSIGNMENT_TOPIC, World, assignment

AFTER = 30.0
ONLINE = encode(ControllerState(controller_id="c", state=AgentStatus.ONLINE))


class Link:
    up = True


@pytest.fixture
def world(tmp_path: Path) -> tuple[World, Link]:
    w = World(tmp_path, local_guard={"after_s": AFTER}, telemetry_interval_s=5)
    link = Link()
    w.service.connected = lambda: link.up
    w.service.start(now=0)
    w.service.handle_message(
        CONTROLLER_STATE_TOPIC, encode(ControllerState(controller_id="c", state=AgentStatus.ONLINE))
    )
    w.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=7, concurrency=8, compression_level=5)))
    w.service.tick(0.0)  # in contact
    return w, link


def test_in_contact_the_assignment_rules_however_hot(world: tuple[World, Link]) -> None:
    w, _link = world
    w.host.temperature_c = 85.0
    for now in range(0, 300, 5):
        w.service.tick(float(now))
    assert not w.service.guard.active
    assert (w.engine.limits[-1].concurrency, w.engine.limits[-1].paused) == (8, False)  # the controller's to judge


def test_alone_and_hot_the_agent_throttles_then_pauses_then_hands_back(world: tuple[World, Link]) -> None:
    w, link = world
    link.up = False
    w.host.temperature_c = 74.0  # hot: compression 0, half the uploads
    w.service.tick(10.0)
    w.service.tick(10.0 + AFTER - 1)
    assert not w.service.guard.active  # not yet
    w.service.tick(10.0 + AFTER)
    assert w.service.guard.active
    limits = w.engine.limits[-1]
    assert (limits.concurrency, limits.compression_level, limits.paused) == (4, 0, False)
    w.host.temperature_c = 81.0
    w.service.tick(100.0)
    assert w.engine.limits[-1].paused
    assert w.engine.limits[-1].compression_level == RAW
    link.up = True  # the broker is back, the controller still online: its assignment applies again
    w.service.tick(101.0)
    assert not w.service.guard.active
    assert (w.engine.limits[-1].concurrency, w.engine.limits[-1].paused) == (8, False)
    w.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=8, concurrency=2, paused=True)))
    assert (w.engine.limits[-1].concurrency, w.engine.limits[-1].paused) == (2, True)  # and the next one


def test_a_controller_that_says_offline_is_no_contact(world: tuple[World, Link]) -> None:
    w, _link = world
    w.host.throttled = 0x4  # the firmware throttles now: critical
    offline = ControllerState(controller_id="c", state=AgentStatus.OFFLINE)
    w.service.handle_message(CONTROLLER_STATE_TOPIC, encode(offline))
    w.service.tick(50.0)
    w.service.tick(50.0 + AFTER)
    assert w.engine.limits[-1].paused
    w.service.handle_message(
        CONTROLLER_STATE_TOPIC, encode(ControllerState(controller_id="c", state=AgentStatus.ONLINE))
    )
    w.service.tick(90.0)
    assert not w.engine.limits[-1].paused


def test_cooling_down_alone_uses_the_same_hysteresis(world: tuple[World, Link]) -> None:
    w, link = world
    link.up = False
    w.host.temperature_c = 78.0  # very hot
    w.service.tick(0.0)
    w.service.tick(AFTER)
    assert w.service.guard.level == 3
    w.host.temperature_c = 60.0  # cool, but the hold time is the controller's 60 s
    w.service.tick(AFTER + 5)
    assert w.service.guard.level == 3
    w.service.tick(AFTER + 70)
    assert w.service.guard.level == NORMAL
    assert w.engine.limits[-1].concurrency == 8


def test_disabled_it_never_acts(tmp_path: Path) -> None:
    w = World(tmp_path, local_guard={"enabled": False, "after_s": 1})
    w.service.connected = lambda: False
    w.service.start(now=0)
    w.host.temperature_c = 90.0
    for now in range(0, 100, 5):
        w.service.tick(float(now))
    assert not w.engine.limits[-1].paused


@pytest.mark.parametrize(
    ("temperature", "level"),
    [(None, NORMAL), (60.0, NORMAL), (71.0, WARM), (74.0, HOT), (80.0, CRITICAL)],
)
def test_the_guard_steps_like_the_policy(temperature: float | None, level: int) -> None:
    guard = LocalGuard(LocalGuardSection(after_s=1), now=0.0)
    assert guard.contact(False, 1.0)
    guard.observe(Reading(temperature), 1.0)
    assert guard.level == level


def test_birth_reports_memory_and_telemetry_the_drain_time(tmp_path: Path) -> None:
    from dataclasses import replace

    from edge_agent.engine import EngineStats
    from edge_agent.service.ports import Capabilities

    w = World(tmp_path)
    w.service.capabilities = Capabilities("Pi", 4, 4 * 2**30, 2**34, 1e6, 256 * 2**20, 70 * 2**20)
    birth = w.service.birth()
    assert isinstance(birth, Birth)
    assert (birth.memory_limit_bytes, birth.baseline_rss_bytes) == (256 * 2**20, 70 * 2**20)
    w.engine.snapshot = replace(EngineStats(), backlog_bytes=10**9, backlog_eta_s=512.5)
    sent = w.service.telemetry()
    assert isinstance(sent, Telemetry)
    assert sent.backlog_eta_s == 512.5
    w.engine.snapshot = EngineStats()
    assert w.service.telemetry().backlog_eta_s is None
