"""The tick's pure steps: ``decide`` isolates the agents the policy raises for, ``changed`` keeps only what differs
from what is in force, and ``InForce.after`` is what the ingest thread reads after a tick."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policy import AgentView, Decision, FleetView, PolicyConfig, PolicyState, TelemetryView, assign
from controller.policy.decide import changed, decide
from controller.service.ticker import InForce, Loaded, Round
from controller.store.assignments import FleetRows
from controller.store.models import CurrentAssignment

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def agent(agent_id: str, site: str = "north") -> AgentView:
    telemetry = TelemetryView(at=NOW - timedelta(seconds=1), temperature_c=50.0)
    return AgentView(agent_id=agent_id, site=site, cores=4, ram_bytes=4 << 30, telemetry=telemetry)


def poisoned(*poison: str, cursed_site: str = "") -> object:
    """``assign``, but raising (as ``int(inf)`` once did) whenever one of ``poison`` is in the fleet, and for any
    fleet with two agents of ``cursed_site`` (each alone is fine)."""

    def policy(fleet: FleetView, config: PolicyConfig, now: datetime) -> dict[str, Decision]:
        if any(a.agent_id in poison for a in fleet.agents):
            raise OverflowError("cannot convert float infinity to integer")
        if sum(a.site == cursed_site for a in fleet.agents) >= 2:
            raise ValueError(f"site {cursed_site} is cursed")
        return assign(fleet, config, now)

    return policy


def test_the_others_are_decided_the_agent_at_fault_is_left_out() -> None:
    agents = (agent("a1"), agent("poison"), agent("a2"), agent("b1", "south"))
    decided = decide(FleetView(agents=agents), PolicyConfig(), NOW, policy=poisoned("poison"))  # type: ignore[arg-type]
    assert sorted(decided.decisions) == ["a1", "a2", "b1"]
    assert [(f.scope, f.name, type(f.error)) for f in decided.failures] == [
        ("fleet", "", OverflowError),
        ("agent", "poison", OverflowError),
    ]
    # the rest of its site is still decided together: they share the site's uplink
    shares = [decided.decisions[i].settings.bandwidth_bps for i in ("a1", "a2")]
    assert sum(shares) <= PolicyConfig().site_uplink_bps


def test_a_healthy_fleet_is_decided_in_one_run() -> None:
    fleet = FleetView(agents=(agent("a1"), agent("b1", "south")))
    decided = decide(fleet, PolicyConfig(), NOW, policy=poisoned("poison"))  # type: ignore[arg-type]
    assert sorted(decided.decisions) == ["a1", "b1"]
    assert decided.failures == ()
    assert decided.decisions == assign(fleet, PolicyConfig(), NOW)


def test_a_site_that_fails_without_its_failing_agents_is_left_out_the_others_are_not() -> None:
    fleet = FleetView(agents=(agent("a1"), agent("c1", "cursed"), agent("c2", "cursed")))
    decided = decide(fleet, PolicyConfig(), NOW, policy=poisoned(cursed_site="cursed"))  # type: ignore[arg-type]
    assert sorted(decided.decisions) == ["a1"]
    assert [(f.scope, f.name) for f in decided.failures] == [("fleet", ""), ("site", "cursed")]


@given(
    st.lists(st.sampled_from(["north", "south", "east"]), min_size=1, max_size=12),
    st.sets(st.integers(min_value=0, max_value=11)),
)
def test_exactly_the_agents_at_fault_are_left_out(sites: list[str], poison_at: set[int]) -> None:
    agents = tuple(agent(f"pi-{i}", site) for i, site in enumerate(sites))
    poison = {f"pi-{i}" for i in poison_at if i < len(agents)}
    decided = decide(FleetView(agents=agents), PolicyConfig(), NOW, policy=poisoned(*poison))  # type: ignore[arg-type]
    assert set(decided.decisions) == {a.agent_id for a in agents} - poison
    assert {f.name for f in decided.failures if f.scope == "agent"} == poison
    assert (len(decided.failures) > 0) == bool(poison)


def in_force(view: AgentView) -> AgentView:
    """``view`` with its own decision in force (as stored after the last tick)."""
    decision = assign(FleetView((view,)), PolicyConfig(), NOW)[view.agent_id]
    return replace(view, previous=decision.settings, state=decision.state)


def other_settings(view: AgentView) -> AgentView:
    current = in_force(view)
    assert current.previous is not None
    return replace(current, previous=replace(current.previous, concurrency=1))


@pytest.mark.parametrize(
    ("case", "change", "is_changed"),
    [
        ("no assignment yet", lambda v: v, True),
        ("same settings, same state", in_force, False),
        ("other settings", other_settings, True),
        ("other policy state", lambda v: replace(in_force(v), state=PolicyState(thermal_level=2)), True),
    ],
)
def test_changed_keeps_what_differs_from_what_is_in_force(case: str, change: object, is_changed: bool) -> None:
    view = change(agent("a1"))  # type: ignore[operator]
    decisions = assign(FleetView((view,)), PolicyConfig(), NOW)
    assert ("a1" in changed(FleetView((view,)), decisions)) is is_changed, case


def test_changed_ignores_agents_without_a_decision() -> None:
    assert changed(FleetView((agent("a1"),)), {}) == {}


def row(agent_id: str, concurrency: int, thermal_level: int = 0) -> CurrentAssignment:
    return CurrentAssignment(
        agent_id=agent_id, version=1, concurrency=concurrency, part_size=8 << 20, at=NOW, thermal_level=thermal_level
    )


class Stored:
    def __init__(self, agent_id: str, site: str) -> None:
        self.id, self.site = agent_id, site


def test_in_force_after_a_full_tick_takes_the_stored_fleet_and_overlays_its_own() -> None:
    stored = FleetRows([Stored("mine", "north"), Stored("theirs", "south")], {"theirs": row("theirs", 3, 2)}, [])  # type: ignore[list-item]
    mine = FleetRows([Stored("mine", "north")], {}, [])  # type: ignore[list-item]
    decision = assign(FleetView((agent("mine"),)), PolicyConfig(), NOW)
    done = Round(Loaded(stored, mine, FleetView((agent("mine"),))), decision, [row("mine", 8)])
    after = InForce(concurrency={"gone": 1}, levels={"gone": 4}, sites={"gone": "x"}).after(done, full=True)
    assert after == InForce({"theirs": 3, "mine": 8}, {"theirs": 2, "mine": 0}, {"mine": "north", "theirs": "south"})


def test_in_force_after_a_site_tick_overlays_its_site_and_keeps_the_rest() -> None:
    rows = FleetRows([Stored("hot", "north")], {"hot": row("hot", 8)}, [])  # type: ignore[list-item]
    hot = replace(agent("hot"), telemetry=replace(agent("hot").telemetry, temperature_c=85.0))  # type: ignore[type-var]
    decisions = assign(FleetView((hot,)), PolicyConfig(), NOW)
    done = Round(Loaded(rows, rows, FleetView((hot,))), decisions, [row("hot", 2, 4)])
    before = InForce({"hot": 8, "cool": 5}, {"hot": 0, "cool": 0}, {"hot": "north", "cool": "south"})
    after = before.after(done, full=False)
    assert after == InForce({"hot": 2, "cool": 5}, {"hot": 4, "cool": 0}, before.sites)
