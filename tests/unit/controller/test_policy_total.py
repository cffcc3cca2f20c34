"""``assign`` is total: any fleet built from schema-valid messages (and worse: NaN, infinities, corrupt state,
odd overrides and configs) gives decisions that are valid ``Assignment`` messages. Tables for the boundaries."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.policy import (
    AgentView,
    Decision,
    FleetView,
    OverrideView,
    PolicyConfig,
    PolicyState,
    TelemetryView,
    assign,
)
from controller.policy.bandwidth import Claim as BandwidthClaim
from controller.policy.bandwidth import age_weight, max_min_share
from controller.policy.sizing import part_size
from fleet_protocol.assignment import (
    MAX_CONCURRENCY,
    MAX_PART_SIZE,
    MAX_WINDOWS,
    MIN_PART_SIZE,
    AssignmentSettings,
)
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import MAX_REASON_CHARS, SENT_AT_MAX, SENT_AT_MIN, Assignment, Birth, Telemetry
from fleet_protocol.numbers import MAX_BYTES
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.hostile import ANY_FLOAT, ANY_INT, valid_data

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MIB = 1 << 20


def as_assignment(agent_id: str, decision: Decision, version: int = 1) -> Assignment:
    """What the controller's ticker builds from a decision (it must never fail)."""
    return Assignment.of(decision.settings, agent_id=agent_id, seq=0, version=version, reason=decision.reason)


def check_all_valid(decisions: dict[str, Decision]) -> None:
    for agent_id, decision in decisions.items():
        message = as_assignment(agent_id, decision)
        assert decode(agent_topic(agent_id, AgentChannel.ASSIGNMENT), encode(message)) == message


# -- strategies: agents from schema-valid birth and telemetry messages ------------------------------------------
def _telemetry_view(data: dict[str, Any], fresh: bool) -> TelemetryView:
    message = Telemetry.model_validate(data)
    fields = {name: getattr(message, name) for name in TelemetryView.__dataclass_fields__ if name != "at"}
    return TelemetryView(at=NOW - timedelta(seconds=1) if fresh else message.sent_at, **fields)


levels = st.one_of(st.integers(0, 4), st.sampled_from([-3, 5, 9, 2**40]))
times = st.datetimes(SENT_AT_MIN.replace(tzinfo=None), SENT_AT_MAX.replace(tzinfo=None), timezones=st.just(UTC))
#: the assignment in force as the store hands it over: any row at all, fitted by the store's converter
previous_settings = st.builds(
    AssignmentSettings.fit,
    concurrency=st.integers(-5, 100),
    part_size=st.one_of(st.integers(0, 2**40), st.sampled_from([MIN_PART_SIZE, MAX_PART_SIZE])),
    windows=st.lists(st.sampled_from(["22:00-06:00", "00:00-00:00", "bad", "25:00-01:00"]), max_size=60).map(tuple),
    bandwidth_bps=st.integers(-1, 2**70),
    compression_level=st.integers(-5, 12),
    paused=st.booleans(),
    upload_now=st.booleans(),
)


@st.composite
def agents(draw: st.DrawFn, agent_id: str) -> AgentView:
    birth = Birth.model_validate(draw(valid_data(Birth, agent_id=agent_id)))
    telemetry = None
    if draw(st.booleans()):
        telemetry = _telemetry_view(draw(valid_data(Telemetry, agent_id=agent_id)), fresh=draw(st.booleans()))
    return AgentView(
        agent_id=agent_id,
        site=draw(st.sampled_from([birth.site, "", "garden"])),
        online=draw(st.booleans()) or telemetry is None,
        cores=birth.cores,
        ram_bytes=draw(st.sampled_from([birth.ram_bytes, 0])),
        encode_bps_by_level=tuple(birth.encode_bps_by_level),
        compression_ratio_by_level=tuple(birth.compression_ratio_by_level),
        encode_cores=birth.encode_cores,
        telemetry=telemetry,
        state=PolicyState(draw(levels), draw(st.one_of(st.none(), times)), draw(st.booleans())),
        previous=draw(st.one_of(st.none(), previous_settings)),
    )


windows = st.lists(st.sampled_from(["22:00-06:00", "01:00-02:00", "03:30-04:00", "not a window"]), max_size=100)
overrides = st.builds(
    OverrideView,
    who=st.text(max_size=200),
    paused=st.one_of(st.none(), st.booleans()),
    windows=st.one_of(st.none(), windows.map(tuple)),
    concurrency_cap=st.one_of(st.none(), st.integers(-10, 10**6)),
    bandwidth_cap_bps=st.one_of(st.none(), st.integers(-10, 2**80)),
    upload_now=st.booleans(),
)
configs = st.builds(
    PolicyConfig,
    site_uplink_bps=st.one_of(st.integers(0, 2**100), st.sampled_from([0, 1, 12_500_000])),
    windows=st.lists(st.sampled_from(["22:00-06:00", "01:00-02:00", "02:00-03:00"]), max_size=80).map(tuple),
    max_concurrency=st.integers(1, 64),
    ram_budget_fraction=st.floats(min_value=1e-9, max_value=1.0),
    widen_backlog_bytes=st.integers(0, 2**70),
)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[FleetView, PolicyConfig]:
    ids = draw(st.lists(st.sampled_from([f"pi-{i}" for i in range(6)]), min_size=1, max_size=6, unique=True))
    views = tuple(draw(agents(agent_id)) for agent_id in ids)
    sites = {view.site for view in views}
    return (
        FleetView(
            agents=views,
            agent_overrides=draw(st.dictionaries(st.sampled_from(ids), overrides, max_size=2)),
            site_overrides=draw(st.dictionaries(st.sampled_from(sorted(sites)), overrides, max_size=1)),
        ),
        draw(configs),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fleets())
def test_any_fleet_from_valid_messages_gets_valid_assignments(fleet: tuple[FleetView, PolicyConfig]) -> None:
    snapshot, config = fleet
    decisions = assign(snapshot, config, NOW)
    check_all_valid(decisions)
    for decision in decisions.values():
        assert 0 <= decision.state.thermal_level <= 4


@settings(max_examples=300, deadline=None)
@given(
    throughput=ANY_FLOAT,
    age=ANY_FLOAT,
    temperature=st.one_of(st.none(), ANY_FLOAT),
    backlog=ANY_INT,
    ram=ANY_INT,
    cores=st.integers(-(2**40), 2**40),
)
def test_any_numbers_at_all_still_give_valid_assignments(
    throughput: float, age: float, temperature: float | None, backlog: int, ram: int, cores: int
) -> None:
    """Rows the store kept from before the protocol bounded its numbers: the policy does not trust them either."""
    telemetry = TelemetryView(
        at=NOW,
        temperature_c=temperature,
        throughput_bps=throughput,
        backlog_oldest_age_s=age,
        backlog_bytes=backlog,
        backlog_files=backlog,
        active_uploads=backlog,
    )
    view = AgentView("pi-1", cores=cores, ram_bytes=ram, telemetry=telemetry)
    check_all_valid(assign(FleetView((view,)), PolicyConfig(widen_backlog_bytes=1 << 30), NOW))


# -- tables ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("throughput", "expected"),
    [
        (float(MAX_BYTES), 64 * MIB),
        (1e308, 64 * MIB),  # int(inf) in part sizing killed the tick thread
        (math.inf, 64 * MIB),
        (math.nan, 8 * MIB),  # no measurement
        (-1.0, 8 * MIB),
        (5e-324, 5 * MIB),
    ],
)
def test_part_size_is_total(throughput: float, expected: int) -> None:
    assert part_size(4 << 30, throughput, None, PolicyConfig()) == expected


@pytest.mark.parametrize(("age", "weight"), [(math.inf, 8), (math.nan, 1), (-math.inf, 1), (1e308, 8), (0.0, 1)])
def test_age_weight_is_total(age: float, weight: int) -> None:
    assert age_weight(age, True) == weight


def test_an_uplink_beyond_the_protocol_is_capped() -> None:
    shares = max_min_share(2**100, {"a": BandwidthClaim(2.0**100, 1)})
    assert shares["a"] > MAX_BYTES  # the sharing itself is exact ...
    view = AgentView("pi-1", telemetry=TelemetryView(at=NOW, backlog_bytes=1))
    decision = assign(FleetView((view,)), PolicyConfig(site_uplink_bps=2**100), NOW)["pi-1"]
    assert decision.settings.bandwidth_bps == MAX_BYTES  # ... what is handed out fits the message


@pytest.mark.parametrize(
    ("view", "check"),
    [
        (AgentView("pi-1", cores=10**6, ram_bytes=2**70), lambda s: s.concurrency == 8),
        (AgentView("pi-1", cores=-5, ram_bytes=-1), lambda s: s.concurrency == 2),  # as 1 core, RAM unknown
        (AgentView("pi-1", ram_bytes=1), lambda s: s.part_size == 8 * MIB),  # a budget of 0 bytes: unknown
        (AgentView("pi-1", ram_bytes=16 * MIB), lambda s: (s.part_size, s.concurrency) == (MIN_PART_SIZE, 1)),
        (AgentView("pi-1", state=PolicyState(thermal_level=9)), lambda s: s.paused),  # corrupt: the highest level
        (AgentView("pi-1", state=PolicyState(thermal_level=-2)), lambda s: not s.paused),
    ],
)
def test_boundary_agents(view: AgentView, check: Any) -> None:
    decision = assign(FleetView((view,)), PolicyConfig(), NOW)["pi-1"]
    assert check(decision.settings)
    check_all_valid({"pi-1": decision})


def test_many_windows_and_a_long_reason_are_cut_to_the_message() -> None:
    many = tuple(f"{h:02d}:{m:02d}-{h:02d}:{m + 1:02d}" for h in range(24) for m in (0, 30))  # 48 distinct
    override = OverrideView(who="o" * 5000, windows=(*many, "23:58-23:59", many[0], "99:99-00:00"))
    view = AgentView("pi-1")
    decision = assign(FleetView((view,), agent_overrides={"pi-1": override}), PolicyConfig(), NOW)["pi-1"]
    assert decision.settings.windows == many[:MAX_WINDOWS]
    assert len(decision.reason) == MAX_REASON_CHARS
    assert decision.reason.endswith("…")
    check_all_valid({"pi-1": decision})


@pytest.mark.parametrize(("cap", "concurrency", "paused"), [(-3, 0, True), (0, 0, True), (10**9, 2, False)])
def test_operator_caps_outside_the_bounds(cap: int, concurrency: int, paused: bool) -> None:
    override = OverrideView(concurrency_cap=cap, bandwidth_cap_bps=-5)
    decision = assign(FleetView((AgentView("pi-1"),), agent_overrides={"pi-1": override}), PolicyConfig(), NOW)
    settings_ = decision["pi-1"].settings
    assert (settings_.concurrency, settings_.paused, settings_.bandwidth_bps >= 0) == (concurrency, paused, True)
    assert settings_.concurrency <= MAX_CONCURRENCY
