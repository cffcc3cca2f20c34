"""assign with metered sites (budget held / paced) and upload windows in the uplink share."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.policy import AgentView, FleetView, OverrideView, PolicyConfig, TelemetryView, assign
from controller.policy.bandwidth import inside_windows
from controller.policy.budget import SiteBudget, Usage, site_plan, site_usage, zone
from tests.unit.controller.test_policy_total import NOW as POLICY_NOW
from tests.unit.controller.test_policy_total import check_all_valid, fleets

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # 22 days left in December
GB = 10**9
GIB = 1 << 30


def agent(agent_id: str, site: str = "north", **kw: object) -> AgentView:
    telemetry = TelemetryView(at=NOW, temperature_c=50.0, **kw)  # type: ignore[arg-type]
    return AgentView(agent_id, site=site, cores=4, ram_bytes=4 * GIB, telemetry=telemetry)


def metered(budget: SiteBudget, **kw: object) -> PolicyConfig:
    return PolicyConfig(site_uplink_bps=10_000_000, site_budgets={"north": budget}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("month_gb", "today_gb", "paused", "words"),
    [
        (5, 0, True, "monthly budget of site north spent: 5.00 GB of 5.00 GB; resumes on 2027-01-01"),
        (6, 1, True, "monthly budget of site north spent: 6.00 GB of 5.00 GB; resumes on 2027-01-01"),
        (1, 0.2, True, "daily allowance of site north spent: 0.20 GB of 0.19 GB today"),
        (1, 0, False, "budget of site north: 1.00 GB of 5.00 GB this month, 0.18 GB of 0.18 GB left today"),
    ],
)
def test_a_spent_budget_holds_the_site(month_gb: float, today_gb: float, paused: bool, words: str) -> None:
    usage = Usage(int(month_gb * GB), int(today_gb * GB))
    fleet = FleetView((agent("a", backlog_bytes=GB),), agent_usage={"a": usage}, site_usage={"north": usage})
    decision = assign(fleet, metered(SiteBudget(monthly_bytes=5 * GB)), NOW)["a"]
    assert decision.settings.paused is paused
    assert words in decision.reason
    if not paused:  # 4 GB over 22 days = 0.18 GB today, paced over 300 s: 600 kB/s
        assert decision.settings.bandwidth_bps == 600_000


def test_a_small_allowance_keeps_the_bytes_in_flight_within_it() -> None:
    """A hold stops only new parts: with 1 MB left, one small part in flight, not 8 × 16 MiB."""
    usage = Usage(GB - 10**6, 0)
    fleet = FleetView((agent("a", backlog_bytes=GB),), agent_usage={"a": usage}, site_usage={"north": usage})
    decision = assign(fleet, metered(SiteBudget(monthly_bytes=GB, horizon_s=10)), NOW)["a"]
    assert not decision.settings.paused
    assert (decision.settings.concurrency, decision.settings.part_size) == (1, 5 * 2**20)
    assert "in flight within it: concurrency" in decision.reason


def test_the_pace_splits_today_among_agents_and_other_sites_are_untouched() -> None:
    fleet = FleetView(
        (agent("a", backlog_bytes=10 * GB), agent("b", backlog_bytes=10 * GB), agent("s", site="south")),
        site_usage={"north": Usage()},
    )
    decisions = assign(fleet, metered(SiteBudget(monthly_bytes=31 * GB, horizon_s=60)), NOW)
    # 31 GB over 22 days = 1.41 GB today; each agent 0.70 GB over 60 s = 11.7 MB/s: the uplink share binds
    assert decisions["a"].settings.bandwidth_bps == decisions["b"].settings.bandwidth_bps == 5_000_000
    assert "budget of site north" in decisions["a"].reason
    assert "budget" not in decisions["s"].reason
    assert not decisions["s"].settings.paused


def test_the_agent_daily_cap_holds_one_agent_only() -> None:
    fleet = FleetView(
        (agent("a", backlog_bytes=GB), agent("b", backlog_bytes=GB)),
        agent_usage={"a": Usage(2 * GB, 2 * GB), "b": Usage(GB // 10, GB // 10)},
    )
    decisions = assign(fleet, metered(SiteBudget(agent_daily_bytes=GB)), NOW)
    assert decisions["a"].settings.paused
    assert "daily cap of the agent spent: 2.00 GB of 1.00 GB; resumes on 2026-12-11" in decisions["a"].reason
    assert not decisions["b"].settings.paused
    # b has the whole uplink to itself (a is paused); its cap leaves 0.9 GB = 3 MB/s over 300 s
    assert decisions["b"].settings.bandwidth_bps == 3_000_000


@pytest.mark.parametrize(
    ("tz", "a_inside"),
    [
        ("UTC", True),  # 12:00 UTC is inside 08:00-16:00
        ("Asia/Tokyo", False),  # 21:00 in Tokyo is not
    ],
)
def test_only_agents_inside_their_window_share_the_uplink(tz: str, a_inside: bool) -> None:
    config = PolicyConfig(
        site_uplink_bps=10_000_000, site_windows={"north": ("08:00-16:00",)}, site_timezones={"north": tz}
    )
    fleet = FleetView((agent("a", backlog_bytes=GB), agent("b", backlog_bytes=GB, site="north")))
    both = assign(fleet, config, NOW)
    # the same windows for both: inside, they split the uplink; outside, each is told the same (the share it
    # would have with both inside)
    assert both["a"].settings.bandwidth_bps == both["b"].settings.bandwidth_bps == 5_000_000
    assert ("outside their window" in both["a"].reason) is not a_inside


def test_an_agent_outside_its_window_does_not_take_a_share_from_those_inside() -> None:
    fleet = FleetView((agent("in", backlog_bytes=GB), agent("out", backlog_bytes=GB), agent("now", backlog_bytes=GB)))
    config = PolicyConfig(site_uplink_bps=9_000_000, site_windows={"north": ("22:00-06:00",)})
    overrides = {"in": OverrideView(windows=("11:00-13:00",)), "now": OverrideView(upload_now=True)}
    decisions = assign(replace(fleet, agent_overrides=overrides), config, NOW)
    bw = {k: d.settings.bandwidth_bps for k, d in decisions.items()}
    assert bw["in"] == bw["now"] == 4_500_000  # the two inside split the uplink
    assert bw["out"] == 3_000_000  # as if all three were inside
    assert "2 of 2 agents with backlog, 1 outside their window, this one too" in decisions["out"].reason


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        PolicyConfig(site_timezones={"north": "Nowhere/Land"})


@st.composite
def metered_fleets(draw: st.DrawFn) -> tuple[FleetView, PolicyConfig]:
    fleet, config = draw(fleets())
    sites = sorted({agent.site for agent in fleet.agents})
    budgets = st.builds(
        SiteBudget,
        monthly_bytes=st.integers(0, 10**13),
        month_start_day=st.integers(1, 28),
        timezone=st.sampled_from(["UTC", "Asia/Kolkata", "America/Los_Angeles"]),
        agent_daily_bytes=st.sampled_from([0, 10**6, 10**9]),
        horizon_s=st.sampled_from([10.0, 300.0, 86_400.0]),
    )
    usage = st.builds(Usage, st.integers(0, 10**13), st.integers(0, 10**13))
    config = replace(config, site_budgets=draw(st.dictionaries(st.sampled_from(sites), budgets, max_size=3)))
    agent_usage = {agent.agent_id: draw(usage) for agent in fleet.agents}
    sites_of = {agent.agent_id: agent.site for agent in fleet.agents}
    return replace(fleet, agent_usage=agent_usage, site_usage=site_usage(agent_usage, sites_of)), config


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(metered_fleets())
def test_metered_sites_get_valid_assignments_paced_within_what_is_left(fleet: tuple[FleetView, PolicyConfig]) -> None:
    snapshot, config = fleet
    decisions = assign(snapshot, config, POLICY_NOW)
    check_all_valid(decisions)
    for site, site_budget in config.site_budgets.items():
        if site_budget.monthly_bytes <= 0:
            continue
        plan = site_plan(site_budget, snapshot.site_usage.get(site, Usage()), POLICY_NOW)
        sending = [
            d.settings.bandwidth_bps
            for agent in snapshot.agents
            if agent.site == site and (d := decisions.get(agent.agent_id)) is not None and not d.settings.paused
        ]
        assert all(bps > 0 for bps in sending)  # a metered agent that may send is always paced
        assert sum(sending) * site_budget.horizon_s <= plan.left_today


@pytest.mark.parametrize(
    ("windows", "now", "tz", "inside"),
    [
        ((), NOW, "UTC", True),  # no windows: always
        (("08:00-16:00",), NOW, "UTC", True),
        (("08:00-16:00",), NOW, "Asia/Tokyo", False),  # 21:00 there
        (("22:00-06:00",), NOW, "Asia/Tokyo", False),
        (("22:00-06:00",), NOW, "Pacific/Auckland", True),  # 01:00 there
        (("12:00-12:30",), NOW, "UTC", True),  # the start minute is inside
        (("11:00-12:00",), NOW, "UTC", False),  # the end minute is not
        (("01:00-02:00", "12:00-13:00"), NOW, "UTC", True),  # any of them
        (("05:00-05:00",), NOW, "UTC", True),  # start = end: the whole day
    ],
)
def test_inside_windows(windows: tuple[str, ...], now: datetime, tz: str, inside: bool) -> None:
    assert inside_windows(windows, now, zone(tz)) is inside
