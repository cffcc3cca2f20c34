"""Operator overrides of metered links (a site's monthly budget, daily caps) in the pure policy: they beat the
configured ``[policy.sites]`` budget, ``None`` keeps it, 0 means none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.policy import FleetView, OverrideView, PolicyConfig, assign
from controller.policy.budget import SiteBudget, Usage, overridden
from tests.unit.controller.test_assign_budget import GB, NOW, agent

CONFIGURED = SiteBudget(monthly_bytes=5 * GB, agent_daily_bytes=GB)


@pytest.mark.parametrize(
    ("monthly", "daily", "expected"),
    [
        (None, None, (5 * GB, GB)),
        (20 * GB, None, (20 * GB, GB)),
        (GB, None, (GB, GB)),
        (0, None, (0, GB)),
        (None, 3 * GB, (5 * GB, 3 * GB)),
        (None, 0, (5 * GB, 0)),
        (7 * GB, 2 * GB, (7 * GB, 2 * GB)),
        (-5, -1, (0, 0)),  # a corrupt row means none, never a negative budget
    ],
)
def test_an_override_beats_the_configured_budget(
    monthly: int | None, daily: int | None, expected: tuple[int, int]
) -> None:
    budget = overridden(CONFIGURED, monthly, daily)
    assert (budget.monthly_bytes, budget.agent_daily_bytes) == expected
    assert (budget.month_start_day, budget.timezone, budget.horizon_s) == (1, "UTC", CONFIGURED.horizon_s)


def config(budget: SiteBudget | None) -> PolicyConfig:
    sites = {} if budget is None else {"north": budget}
    return PolicyConfig(site_uplink_bps=10_000_000, site_budgets=sites)


SPENT = Usage(5 * GB, 0)  # the configured 5 GB month is spent; nothing sent today


@pytest.mark.parametrize(
    ("configured", "site_override", "paused", "words"),
    [
        (CONFIGURED, None, True, "monthly budget of site north spent: 5.00 GB of 5.00 GB"),
        # raised: 22 GB left over 22 days = 1 GB today, split between its cap and the month
        (
            CONFIGURED,
            OverrideView(who="olga", monthly_budget_bytes=27 * GB),
            False,
            "operator olga: monthly budget 27.00 GB",
        ),
        # lowered below what is used: still held, with the operator's number
        (CONFIGURED, OverrideView(who="olga", monthly_budget_bytes=GB), True, "spent: 5.00 GB of 1.00 GB"),
        # 0 = no monthly budget: only the daily cap remains
        (CONFIGURED, OverrideView(who="olga", monthly_budget_bytes=0), False, "daily cap: 1.00 GB left today"),
        # an unmetered site metered by the operator alone
        (None, OverrideView(who="olga", monthly_budget_bytes=GB), True, "monthly budget of site north spent"),
        # cleared (no budget fields): the configured budget again
        (CONFIGURED, OverrideView(who="olga", paused=False), True, "monthly budget of site north spent"),
    ],
)
def test_a_site_override_changes_the_hold(
    configured: SiteBudget | None, site_override: OverrideView | None, paused: bool, words: str
) -> None:
    overrides = {} if site_override is None else {"north": site_override}
    fleet = FleetView(
        (agent("a", backlog_bytes=GB),), site_overrides=overrides, agent_usage={"a": SPENT}, site_usage={"north": SPENT}
    )
    decision = assign(fleet, config(configured), NOW)["a"]
    assert decision.settings.paused is paused, decision.reason
    assert words in decision.reason


@pytest.mark.parametrize(
    ("agent_cap", "site_cap", "a_paused", "b_paused", "words"),
    [
        (None, None, True, True, "daily cap of the agent spent: 1.50 GB of 1.00 GB"),
        (2 * GB, None, False, True, "operator olga: daily cap 2.00 GB"),  # a's own cap, b keeps the site's
        (0, None, False, True, "operator olga: daily cap none"),  # a uncapped
        (None, 3 * GB, False, False, "operator olga: daily cap 3.00 GB"),  # every agent of the site
        (GB, 3 * GB, True, False, "daily cap of the agent spent: 1.50 GB of 1.00 GB"),  # the agent's beats the site's
    ],
)
def test_daily_caps_per_agent_and_per_site(
    agent_cap: int | None, site_cap: int | None, a_paused: bool, b_paused: bool, words: str
) -> None:
    used = Usage(3 * GB // 2, 3 * GB // 2)
    fleet = FleetView(
        (agent("a", backlog_bytes=GB), agent("b", backlog_bytes=GB)),
        agent_overrides={} if agent_cap is None else {"a": OverrideView(who="olga", daily_cap_bytes=agent_cap)},
        site_overrides={} if site_cap is None else {"north": OverrideView(who="olga", daily_cap_bytes=site_cap)},
        agent_usage={"a": used, "b": used},
    )
    decisions = assign(fleet, config(SiteBudget(agent_daily_bytes=GB)), NOW)
    assert (decisions["a"].settings.paused, decisions["b"].settings.paused) == (a_paused, b_paused)
    assert words in decisions["a"].reason


def test_an_agent_cap_meters_an_unmetered_site_for_that_agent_only() -> None:
    used = Usage(2 * GB, 2 * GB)
    fleet = FleetView(
        (agent("a", backlog_bytes=GB), agent("b", backlog_bytes=GB)),
        agent_overrides={"a": OverrideView(who="olga", daily_cap_bytes=GB)},
        agent_usage={"a": used, "b": used},
    )
    decisions = assign(fleet, config(None), datetime(2026, 12, 10, 12, 0, tzinfo=UTC))
    assert decisions["a"].settings.paused
    assert "daily cap of the agent spent: 2.00 GB of 1.00 GB" in decisions["a"].reason
    assert not decisions["b"].settings.paused
    assert "budget" not in decisions["b"].reason
    assert "cap of the agent" not in decisions["b"].reason


def test_the_fleet_view_names_the_effective_budget() -> None:
    fleet = FleetView(site_overrides={"north": OverrideView(monthly_budget_bytes=9 * GB)})
    assert fleet.budget_overridden
    assert fleet.budget_for("north", config(CONFIGURED)).monthly_bytes == 9 * GB
    assert fleet.budget_for("south", config(CONFIGURED)) == SiteBudget()
    assert not FleetView(site_overrides={"north": OverrideView(paused=True)}).budget_overridden


@settings(max_examples=200, deadline=None)
@given(
    month=st.integers(0, 50 * GB),
    today=st.integers(0, 5 * GB),
    low=st.integers(0, 40 * GB),
    raise_by=st.integers(0, 40 * GB),
    backlog=st.integers(0, 10 * GB),
)
def test_raising_a_budget_never_holds_more_or_paces_slower(
    month: int, today: int, low: int, raise_by: int, backlog: int
) -> None:
    usage = Usage(max(month, today), today)

    def decide(monthly: int) -> tuple[bool, int]:
        fleet = FleetView(
            (agent("a", backlog_bytes=backlog),),
            site_overrides={"north": OverrideView(who="olga", monthly_budget_bytes=monthly)},
            agent_usage={"a": usage},
            site_usage={"north": usage},
        )
        decision = assign(fleet, config(CONFIGURED), NOW)["a"]
        return decision.settings.paused, decision.settings.bandwidth_bps

    paused_low, pace_low = decide(max(1, low))
    paused_high, pace_high = decide(max(1, low) + raise_by)
    assert paused_low or not paused_high  # held with more budget → held with less
    if not paused_low:
        assert pace_high >= pace_low
