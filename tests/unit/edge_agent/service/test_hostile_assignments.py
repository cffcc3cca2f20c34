"""The agent's assignment handler under hostile input (strategies from tests/hostile.py): any schema-valid
assignment is applied, anything else is counted and dropped, nothing escapes; what the agent reports about
itself is always a valid message whatever its host and engine measure."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edge_agent.engine import EngineStats, Limits
from edge_agent.service.limits import MemoryBox, limits_from_assignment, within_memory
from edge_agent.service.ports import HostSample
from fleet_plan.memory import HEADROOM
from fleet_protocol.assignment import MAX_CONCURRENCY, MAX_PART_SIZE, MIN_PART_SIZE
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment, ControllerState, Telemetry
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from tests.hostile import ANY_FLOAT, ANY_INT, Hostile, extreme_data, hostile_payload, invalid_payload, valid_payload
from tests.unit.edge_agent.service.test_agent import ID, World, assignment

ASSIGNMENT_TOPIC = agent_topic(ID, AgentChannel.ASSIGNMENT)
RAM = 4 * 2**30  # what World's capabilities say
MiB = 1 << 20
ONE_WORLD = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def operative(message: Assignment | None) -> dict[str, object]:
    assert message is not None
    return message.model_dump(exclude={"seq", "sent_at"})


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.service.start(now=0)
    return w


@ONE_WORLD
@given(payload=valid_payload(Assignment, agent_id=ID))
def test_any_valid_assignment_is_applied_and_kept(world: World, payload: bytes) -> None:
    expected = decode(ASSIGNMENT_TOPIC, payload)
    assert isinstance(expected, Assignment)
    world.service.handle_message(ASSIGNMENT_TOPIC, payload)
    assert operative(world.service.assignment) == operative(expected)  # (the same again is not re-applied)
    assert world.service.limits == limits_from_assignment(expected, MemoryBox(RAM))
    assert world.engine.limits[-1] == world.service.limits
    assert operative(world.service.store.load(ID)) == operative(expected)  # persisted, readable at the next start
    assert (world.service.counters.invalid_messages, world.service.counters.failed_messages) == (0, 0)


@ONE_WORLD
@given(payload=invalid_payload(Assignment, agent_id=ID))
def test_any_invalid_assignment_is_counted_and_dropped(world: World, payload: bytes) -> None:
    assume(payload != b"")  # an empty payload clears the retained assignment: ignored, not invalid (test_agent.py)
    before, limits = world.service.counters.invalid_messages, world.service.limits
    world.service.handle_message(ASSIGNMENT_TOPIC, payload)
    assert world.service.counters.invalid_messages == before + 1
    assert world.service.limits == limits


@ONE_WORLD
@given(valid=valid_payload(ControllerState), invalid=invalid_payload(ControllerState))
def test_controller_state_payloads(world: World, valid: bytes, invalid: bytes) -> None:
    assume(invalid != b"")  # a cleared retained state: ignored
    before = world.service.counters.invalid_messages
    world.service.handle_message(CONTROLLER_STATE_TOPIC, valid)
    world.service.handle_message(CONTROLLER_STATE_TOPIC, invalid)
    assert world.service.counters.invalid_messages == before + 1
    assert world.service.controller_online is not None


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=st.lists(hostile_payload(Assignment, agent_id=ID), max_size=25))
def test_after_any_sequence_a_normal_assignment_applies_and_telemetry_flows(
    tmp_path: Path, sequence: list[Hostile]
) -> None:
    w = World(Path(tempfile.mkdtemp(dir=tmp_path)))  # a fresh agent per example
    w.service.start(now=0)
    for item in sequence:
        w.service.handle_message(ASSIGNMENT_TOPIC, item.payload)
    assert w.service.counters.invalid_messages == sum(not item.valid and item.payload != b"" for item in sequence)
    normal = assignment(version=10**6, concurrency=2, part_size=16 * MiB, windows=["22:00-06:00"])
    w.service.handle_message(ASSIGNMENT_TOPIC, encode(normal))
    assert w.engine.limits[-1] == Limits(concurrency=2, part_size=16 * MiB, windows=("22:00-06:00",))
    w.service.tick(now=100.0)
    sent = w.publisher.of(Telemetry)[-1]
    assert sent.assignment_version == 10**6


@pytest.mark.parametrize("high", [True, False], ids=["all at their maximum", "all at their minimum"])
def test_an_assignment_with_every_field_at_its_bound(world: World, high: bool) -> None:
    data = extreme_data(Assignment, high, agent_id=ID)
    world.service.handle_message(ASSIGNMENT_TOPIC, encode(Assignment.model_validate(data)))
    assert world.service.counters.invalid_messages == 0
    limits = world.engine.limits[-1]
    assert limits.concurrency * limits.part_size <= RAM * HEADROOM


def test_a_failure_while_applying_is_counted_not_raised(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_limits: Limits) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(world.engine, "set_limits", broken)
    world.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=3)))
    assert world.service.counters.failed_messages == 1


@pytest.mark.parametrize(
    ("concurrency", "part_size", "box", "expected"),
    [
        (4, 16 * MiB, MemoryBox(4 * 2**30), (4, 16 * MiB)),  # what a controller sends: untouched
        (MAX_CONCURRENCY, MAX_PART_SIZE, MemoryBox(4 * 2**30), (MAX_CONCURRENCY, 51 * MiB)),  # smaller parts first
        (MAX_CONCURRENCY, 64 * MiB, MemoryBox(256 * MiB, 70 * MiB), (26, MIN_PART_SIZE)),  # then fewer
        (0, MAX_PART_SIZE, MemoryBox(4 * 2**30), (0, MAX_PART_SIZE)),  # nothing in flight: nothing to guard
        (8, 8 * MiB, MemoryBox(16 * MiB, 10 * MiB), (0, 8 * MiB)),  # not even one part fits: none
        (MAX_CONCURRENCY, MAX_PART_SIZE, MemoryBox(), (MAX_CONCURRENCY, MAX_PART_SIZE)),  # unknown: as assigned
    ],
)
def test_memory_guard(concurrency: int, part_size: int, box: MemoryBox, expected: tuple[int, int]) -> None:
    """The agent fits any assignment into its own memory with the controller's function (``fleet_plan.memory``)."""
    limits = within_memory(Limits(concurrency=concurrency, part_size=part_size), box, "test")
    assert (limits.concurrency, limits.part_size) == expected


@ONE_WORLD
@given(
    stats=st.builds(
        EngineStats,
        backlog_files=ANY_INT,
        backlog_bytes=ANY_INT,
        oldest_age_s=ANY_FLOAT,
        active_uploads=ANY_INT,
        throughput_bps=ANY_FLOAT,
        bytes_uploaded_total=ANY_INT,
        retries_total=ANY_INT,
        errors_total=ANY_INT,
    ),
    host=st.builds(
        HostSample,
        temperature_c=st.one_of(st.none(), ANY_FLOAT),
        throttled=ANY_INT,
        cpu_percent=ANY_FLOAT,
        mem_available_bytes=ANY_INT,
        disk_free_bytes=ANY_INT,
    ),
)
def test_telemetry_is_valid_whatever_is_measured(
    world: World, monkeypatch: pytest.MonkeyPatch, stats: EngineStats, host: HostSample
) -> None:
    world.engine.snapshot = stats
    monkeypatch.setattr(world.host, "sample", lambda: host)
    message = world.service.telemetry()
    assert decode(agent_topic(ID, AgentChannel.TELEMETRY), encode(message)) == message
