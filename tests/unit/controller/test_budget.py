"""Metered links: the budget month, the daily allowance, the per-agent split and pace (controller.policy.budget)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.policy.budget import (
    MIN_PACE_BPS,
    AgentNeed,
    SiteBudget,
    Usage,
    agent_left,
    allowances,
    cap_reason,
    day_of,
    days_left,
    hold_reason,
    in_flight_fit,
    month_of,
    site_plan,
    site_usage,
)

GB = 10**9


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "start_day", "tz", "start", "end"),
    [
        (utc(2026, 12, 3, 20), 1, "UTC", utc(2026, 12, 1), utc(2027, 1, 1)),
        (utc(2026, 12, 3, 20), 5, "UTC", utc(2026, 11, 5), utc(2026, 12, 5)),
        (utc(2026, 12, 5, 0), 5, "UTC", utc(2026, 12, 5), utc(2027, 1, 5)),
        (utc(2027, 1, 4, 23, 59), 5, "UTC", utc(2026, 12, 5), utc(2027, 1, 5)),
        (utc(2026, 2, 28, 12), 28, "UTC", utc(2026, 2, 28), utc(2026, 3, 28)),
        # 23:30 UTC on Nov 30 is already Dec 1 in Berlin (UTC+1)
        (utc(2026, 11, 30, 23, 30), 1, "Europe/Berlin", utc(2026, 11, 30, 23), utc(2026, 12, 31, 23)),
        # New York: the month of March 2026 starts in EST (UTC-5) and ends in EDT (UTC-4)
        (utc(2026, 3, 15), 1, "America/New_York", utc(2026, 3, 1, 5), utc(2026, 4, 1, 4)),
    ],
)
def test_budget_month(now: datetime, start_day: int, tz: str, start: datetime, end: datetime) -> None:
    period = month_of(now, SiteBudget(monthly_bytes=GB, month_start_day=start_day, timezone=tz))
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(
    ("now", "tz", "days", "day_start"),
    [
        (utc(2026, 12, 1, 0), "UTC", 31, utc(2026, 12, 1)),
        (utc(2026, 12, 31, 23), "UTC", 1, utc(2026, 12, 31)),
        (utc(2026, 12, 31, 23, 30), "Europe/Berlin", 31, utc(2026, 12, 31, 23)),  # Jan 1 in Berlin
        (utc(2026, 2, 10), "UTC", 19, utc(2026, 2, 10)),
    ],
)
def test_days_left_and_day(now: datetime, tz: str, days: int, day_start: datetime) -> None:
    budget = SiteBudget(monthly_bytes=GB, timezone=tz)
    assert days_left(now, budget) == days
    assert day_of(now, budget).start == day_start
    assert day_of(now, budget).end - day_of(now, budget).start == timedelta(days=1)


@pytest.mark.parametrize(
    ("budget_gb", "month_gb", "today_gb", "now", "allowance_gb", "left_gb", "held"),
    [
        (31, 0, 0, utc(2026, 12, 1, 1), 1, 1, False),  # 31 GB over 31 days
        (31, 0.5, 0.5, utc(2026, 12, 1, 9), 1, 0.5, False),  # half of today's gigabyte used
        (31, 1, 1, utc(2026, 12, 1, 23), 1, 0, True),  # today's spent: held until tomorrow
        (31, 0, 0, utc(2026, 12, 22, 1), 3.1, 3.1, False),  # saved 21 days: 31 GB over 10 days
        (31, 30, 0, utc(2026, 12, 22, 1), 0.1, 0.1, False),  # a burst spent 30 GB: 1 GB over 10 days
        (31, 31, 0, utc(2026, 12, 22, 1), 0, 0, True),  # month spent
        (31, 40, 9, utc(2026, 12, 22, 1), 0, 0, True),  # overspent (a lag): never negative
    ],
)
def test_daily_allowance(
    budget_gb: float,
    month_gb: float,
    today_gb: float,
    now: datetime,
    allowance_gb: float,
    left_gb: float,
    held: bool,
) -> None:
    budget = SiteBudget(monthly_bytes=int(budget_gb * GB))
    plan = site_plan(budget, Usage(int(month_gb * GB), int(today_gb * GB)), now)
    assert plan.allowance_today == pytest.approx(allowance_gb * GB, abs=1)
    assert plan.left_today == pytest.approx(left_gb * GB, abs=1)
    assert plan.held is held


def test_overhead_counts_against_the_budget() -> None:
    budget = SiteBudget(monthly_bytes=10 * GB, overhead_fraction=0.05)
    plan = site_plan(budget, Usage(10 * GB, 0), utc(2026, 12, 20))
    assert plan.used_month == int(10.5 * GB)
    assert plan.month_spent


def test_hold_reasons_say_what_and_when() -> None:
    budget = SiteBudget(monthly_bytes=5 * GB)
    month = site_plan(budget, Usage(5 * GB, GB), utc(2026, 12, 20))
    assert hold_reason("north", month) == (
        "monthly budget of site north spent: 5.00 GB of 5.00 GB; resumes on 2027-01-01"
    )
    day = site_plan(budget, Usage(GB, GB), utc(2026, 12, 1, 12))
    assert day.held
    assert not day.month_spent
    assert hold_reason("north", day).startswith("daily allowance of site north spent: 1.00 GB of 0.16 GB today")
    assert hold_reason("north", day).endswith("resumes on 2026-12-02")
    capped = SiteBudget(agent_daily_bytes=GB)
    assert cap_reason(site_plan(capped, Usage(), utc(2026, 12, 1)), 2 * GB) == (
        "daily cap of the agent spent: 2.00 GB of 1.00 GB; resumes on 2026-12-02"
    )


@pytest.mark.parametrize(
    ("needs", "left", "cap", "expected"),
    [
        # two agents with big backlogs split 1 GB evenly
        ({"a": (10 * GB, 1, 0), "b": (10 * GB, 1, 0)}, GB, 0, {"a": GB // 2, "b": GB // 2}),
        # age weight 3 against 1
        ({"a": (10 * GB, 3, 0), "b": (10 * GB, 1, 0)}, GB, 0, {"a": 750_000_000, "b": 250_000_000}),
        # a small backlog takes what it needs, the rest goes to the other
        ({"a": (100_000_000, 1, 0), "b": (10 * GB, 1, 0)}, GB, 0, {"a": 100_000_000, "b": 900_000_000}),
        # the daily cap limits one agent: the other gets the rest
        ({"a": (10 * GB, 1, 0), "b": (10 * GB, 1, 0)}, GB, 200_000_000, {"a": 200_000_000, "b": 200_000_000}),
        # a capped-out agent gets nothing
        ({"a": (10 * GB, 1, 300_000_000), "b": (10 * GB, 1, 0)}, GB, 300_000_000, {"a": 0, "b": 300_000_000}),
        # nothing left: nothing for anyone
        ({"a": (10 * GB, 1, 0)}, 0, 0, {"a": 0}),
        # too little left to pace at 1 kB/s over the horizon: held rather than crawling
        ({"a": (10 * GB, 1, 0)}, 200_000, 0, {"a": 200_000}),
    ],
)
def test_allowance_split(
    needs: dict[str, tuple[int, float, int]], left: int, cap: int, expected: dict[str, int]
) -> None:
    budget = SiteBudget(monthly_bytes=31 * GB, agent_daily_bytes=cap)
    plan = site_plan(budget, Usage(), utc(2026, 12, 1))
    plan = type(plan)(**{**plan.__dict__, "left_today": left})
    given_ = allowances(plan, {k: AgentNeed(*v) for k, v in needs.items()})
    assert {k: a.allowance_bytes for k, a in given_.items()} == expected
    assert sum(a.allowance_bytes or 0 for a in given_.values()) <= left
    for key, allowance in given_.items():
        assert allowance.held is (expected[key] < budget.horizon_s * MIN_PACE_BPS)
        assert allowance.bandwidth_bps * budget.horizon_s <= expected[key]
        assert allowance.held or allowance.bandwidth_bps >= MIN_PACE_BPS


def test_unmetered_and_cap_only() -> None:
    plan = site_plan(SiteBudget(), Usage(10 * GB, GB), utc(2026, 12, 1))
    assert allowances(plan, {"a": AgentNeed(GB, 1, 0)})["a"].allowance_bytes is None
    capped = site_plan(SiteBudget(agent_daily_bytes=GB), Usage(), utc(2026, 12, 1))
    result = allowances(capped, {"a": AgentNeed(GB, 1, 400_000_000), "b": AgentNeed(GB, 1, GB)})
    assert result["a"].allowance_bytes == 600_000_000
    assert not result["a"].held
    assert result["a"].bandwidth_bps == 2_000_000  # 600 MB over 300 s
    assert result["b"].held
    assert result["b"].capped
    assert agent_left(SiteBudget(), GB) is None


def test_site_usage_sums_agents() -> None:
    usage = {"a": Usage(3, 1), "b": Usage(5, 2), "c": Usage(7, 7)}
    assert site_usage(usage, {"a": "n", "b": "n", "c": "s"}) == {"n": Usage(8, 3), "s": Usage(7, 7)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"monthly_bytes": -1},
        {"agent_daily_bytes": -1},
        {"month_start_day": 0},
        {"month_start_day": 29},
        {"timezone": "Mars/Olympus"},
        {"overhead_fraction": 1.5},
        {"horizon_s": 0},
    ],
)
def test_bad_budgets_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SiteBudget(**kwargs)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(moments, st.integers(1, 28), zones)
def test_month_contains_now_and_rolls_over(now: datetime, start_day: int, tz: str) -> None:
    budget = SiteBudget(monthly_bytes=GB, month_start_day=start_day, timezone=tz)
    period = month_of(now, budget)
    assert period.start <= now < period.end
    assert 28 <= (period.end.date() - period.start.date()).days <= 31
    assert month_of(period.end, budget).start == period.end  # the next month starts where this one ends
    assert 1 <= days_left(now, budget) <= 31


@given(
    moments,
    st.integers(0, 10**13),
    st.integers(0, 10**13),
    st.integers(0, 10**13),
    st.floats(0, 1),
)
def test_allowance_never_negative_never_beyond_budget(
    now: datetime, monthly: int, month_used: int, today_used: int, overhead: float
) -> None:
    budget = SiteBudget(monthly_bytes=monthly, overhead_fraction=overhead)
    plan = site_plan(budget, Usage(month_used, today_used), now)
    assert 0 <= plan.left_today <= max(0, monthly - plan.used_month)
    assert plan.allowance_today >= 0


@st.composite
def months(draw: st.DrawFn) -> tuple[SiteBudget, datetime, list[list[int]]]:
    budget = SiteBudget(
        monthly_bytes=draw(st.integers(1, 10 * GB)),
        month_start_day=draw(st.integers(1, 28)),
        timezone=draw(zones),
        agent_daily_bytes=draw(st.sampled_from([0, 50_000_000, GB])),
        horizon_s=3600.0,
    )
    start = month_of(draw(moments), budget).start
    agents = draw(st.integers(1, 4))
    # what each agent would send each hour if nothing held it back (bursts, idle days, steady streams)
    hourly = st.lists(st.sampled_from([0, 1_000, 10**7, 10**8, 10**9, 10**11]), min_size=agents, max_size=agents)
    return budget, start, draw(st.lists(hourly, min_size=1, max_size=31 * 24))


@settings(max_examples=60, deadline=None)
@given(months())
def test_a_simulated_month_never_exceeds_the_budget(case: tuple[SiteBudget, datetime, list[list[int]]]) -> None:
    """Hourly decisions (the pace's horizon: an hour); every agent sends what its demand and pace allow."""
    budget, start, hours = case
    month = month_of(start, budget)
    used: dict[str, Usage] = {}
    day = day_of(start, budget)
    for hour, demands in enumerate(hours):
        now = start + timedelta(hours=hour)
        if now >= month.end:
            break
        if now >= day.end:
            day = day_of(now, budget)
            used = {k: Usage(u.month_bytes, 0) for k, u in used.items()}
        site = site_usage(used, {})[""] if used else Usage()
        plan = site_plan(budget, site, now)
        needs = {f"a{i}": AgentNeed(d, 1, used.get(f"a{i}", Usage()).today_bytes) for i, d in enumerate(demands)}
        for key, allowance in allowances(plan, needs).items():
            sent = 0 if allowance.held else min(needs[key].backlog_bytes, int(allowance.bandwidth_bps * 3600))
            have = used.get(key, Usage())
            used[key] = Usage(have.month_bytes + sent, have.today_bytes + sent)
        total_today = sum(u.today_bytes for u in used.values())
        assert total_today <= plan.allowance_today or budget.monthly_bytes == 0
        if budget.agent_daily_bytes:
            assert all(u.today_bytes <= budget.agent_daily_bytes for u in used.values())
    assert sum(u.month_bytes for u in used.values()) <= budget.monthly_bytes


MIB = 1 << 20


@pytest.mark.parametrize(
    ("concurrency", "part", "allowance", "fitted"),
    [
        (8, 16 * MIB, 10**9, (8, 16 * MIB)),  # 128 MiB in flight fit 1 GB: unchanged
        (4, 8 * MIB, 1_000_000, (1, 5 * MIB)),  # a tiny allowance: one part of the smallest size
        (4, 8 * MIB, 20 * MIB, (2, 8 * MIB)),  # two parts fit
        (8, 16 * MIB, 12 * MIB, (1, 12 * MIB)),  # one part, no bigger than what is left
        (1, 5 * MIB, 0, (1, 5 * MIB)),  # already the least
        (0, 8 * MIB, 0, (0, 8 * MIB)),  # 0 (no new parts) puts nothing in flight
    ],
)
def test_bytes_in_flight_fit_the_allowance(
    concurrency: int, part: int, allowance: int, fitted: tuple[int, int]
) -> None:
    assert in_flight_fit(concurrency, part, allowance) == fitted


@given(st.integers(0, 64), st.integers(5 * MIB, 5 * 1024 * MIB), st.integers(0, 10**12))
def test_in_flight_never_exceeds_the_allowance_by_more_than_one_small_part(
    concurrency: int, part: int, allowance: int
) -> None:
    got_concurrency, got_part = in_flight_fit(concurrency, part, allowance)
    assert got_concurrency <= concurrency
    assert 5 * MIB <= got_part <= part
    assert got_concurrency >= min(1, concurrency)
    assert got_concurrency * got_part <= max(allowance, 5 * MIB)
