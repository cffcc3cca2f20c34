"""Metered links: a site's monthly data budget spread over the month, and an agent's daily cap. Pure.

A budget month starts at 00:00 local time (the site's ``timezone``) on ``month_start_day`` (1..28) and ends where
the next one starts. A day is local midnight to midnight. What a site may send today:

    allowance today = (budget − used before today) ÷ days left in the month (today included)

so bytes saved early are there later, and a burst cannot spend the month in a day. Usage is measured (see
docs/controller.md, "Metered links") and inflated by ``overhead_fraction`` for what the measure does not see.

What is left today is shared among the site's agents max-min fairly in *bytes* (demand: backlog, weight: age of
the oldest file, each limited by what its own daily cap leaves), and each agent's share becomes a bandwidth cap
of share ÷ ``horizon_s``: however late the next decision comes, the site sends at most what is left in one
horizon (and what is left shrinks towards 0 without being passed). Below ``MIN_PACE_BPS`` the agent is held until
the day (or the month) turns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

from controller.policy.bandwidth import Claim, max_min_share
from fleet_protocol.assignment import MIN_PART_SIZE

#: a budget month starts on a day every month has
MAX_MONTH_START_DAY = 28
#: an agent with no backlog asks this much of today's allowance (a new file may come any moment)
IDLE_DEMAND_BYTES = 64 * 1024 * 1024
#: the default time over which an agent's share of today's allowance is paced
DEFAULT_HORIZON_S = 300.0
#: a pace below this holds the agent instead: a part crawling at a few bytes a second would time out and be sent
#: again (retries cost bytes the measure does not see)
MIN_PACE_BPS = 1000


@functools.lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """The time zone ``name`` (IANA, e.g. ``Europe/Berlin``; ``UTC``); ``ValueError`` if unknown."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class SiteBudget:
    """A site's metering: ``monthly_bytes`` 0 = no monthly budget, ``agent_daily_bytes`` 0 = no daily cap."""

    monthly_bytes: int = 0
    month_start_day: int = 1
    timezone: str = "UTC"
    agent_daily_bytes: int = 0
    overhead_fraction: float = 0.0
    horizon_s: float = DEFAULT_HORIZON_S

    def __post_init__(self) -> None:
        if self.monthly_bytes < 0 or self.agent_daily_bytes < 0:
            raise ValueError("budgets must be ≥ 0 (0 = none)")
        if not 1 <= self.month_start_day <= MAX_MONTH_START_DAY:
            raise ValueError(f"month_start_day must be 1..{MAX_MONTH_START_DAY}")
        if not 0 <= self.overhead_fraction <= 1:
            raise ValueError("overhead_fraction must be in [0, 1]")
        if not 0 < self.horizon_s <= 86_400:
            raise ValueError("horizon_s must be in (0, 86400]")
        zone(self.timezone)

    @property
    def metered(self) -> bool:
        return self.monthly_bytes > 0 or self.agent_daily_bytes > 0

    def billed(self, measured: int) -> int:
        """Measured bytes plus the overhead the measure does not see, rounded up."""
        return math.ceil(max(0, measured) * (1 + self.overhead_fraction))


def overridden(budget: SiteBudget, monthly_bytes: int | None, agent_daily_bytes: int | None) -> SiteBudget:
    """``budget`` (``[policy.sites]``) with an operator's override of the site: a value given (≥ 0, 0 = none)
    beats the configured one, ``None`` keeps it. The month's start day, zone, overhead and horizon stay."""
    if monthly_bytes is not None:
        budget = replace(budget, monthly_bytes=max(0, monthly_bytes))
    if agent_daily_bytes is not None:
        budget = replace(budget, agent_daily_bytes=max(0, agent_daily_bytes))
    return budget


def is_metered(budget: SiteBudget, agent_caps: Iterable[int | None] = ()) -> bool:
    """A site is metered by its budget or by an operator's daily cap on one of its agents."""
    return budget.metered or any(cap for cap in agent_caps)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Usage:
    """Measured bytes sent in the current budget month and in the current local day."""

    month_bytes: int = 0
    today_bytes: int = 0


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tz)


def _month_start(year: int, month: int, day: int, tz: tzinfo) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return _local_midnight(date(year, month, day), tz)


def month_of(now: datetime, budget: SiteBudget) -> Period:
    """The budget month ``now`` lies in (aware, in the site's zone)."""
    tz = zone(budget.timezone)
    local = now.astimezone(tz)
    first = budget.month_start_day
    back = 0 if local.day >= first else 1
    return Period(
        _month_start(local.year, local.month - back, first, tz),
        _month_start(local.year, local.month - back + 1, first, tz),
    )


def day_of(now: datetime, budget: SiteBudget) -> Period:
    """The local day ``now`` lies in (aware, in the site's zone)."""
    tz = zone(budget.timezone)
    today = now.astimezone(tz).date()
    return Period(_local_midnight(today, tz), _local_midnight(today + timedelta(days=1), tz))


def days_left(now: datetime, budget: SiteBudget) -> int:
    """Local days left in the budget month, today included (≥ 1)."""
    return max(1, (month_of(now, budget).end.date() - now.astimezone(zone(budget.timezone)).date()).days)


@dataclass(frozen=True)
class SitePlan:
    """A site's budget today: ``left_today`` is what its agents may still send today."""

    budget: SiteBudget
    used_month: int  # billed
    used_today: int  # billed
    allowance_today: int
    left_today: int
    days_left: int
    month: Period
    day: Period

    @property
    def left_month(self) -> int:
        return max(0, self.budget.monthly_bytes - self.used_month)

    @property
    def month_spent(self) -> bool:
        return self.budget.monthly_bytes > 0 and self.left_month == 0

    @property
    def held(self) -> bool:
        return self.budget.monthly_bytes > 0 and self.left_today == 0


def site_plan(budget: SiteBudget, usage: Usage, now: datetime) -> SitePlan:
    """The site's allowance today from what it used this month and today (measured)."""
    month, day = month_of(now, budget), day_of(now, budget)
    used_month = budget.billed(max(usage.month_bytes, usage.today_bytes))
    used_today = budget.billed(usage.today_bytes)
    remaining_days = days_left(now, budget)
    if budget.monthly_bytes <= 0:
        return SitePlan(budget, used_month, used_today, 0, 0, remaining_days, month, day)
    before_today = max(0, used_month - used_today)
    allowance = max(0, budget.monthly_bytes - before_today) // remaining_days
    left = max(0, min(allowance - used_today, budget.monthly_bytes - used_month))
    return SitePlan(budget, used_month, used_today, allowance, left, remaining_days, month, day)


@dataclass(frozen=True)
class AgentNeed:
    """What one agent of a metered site asks: its backlog, its weight, and what it sent today (measured)."""

    backlog_bytes: int
    weight: float
    today_bytes: int
    #: the agent's own daily cap (an operator's override; 0 = none), ``None``: the site's ``agent_daily_bytes``
    daily_cap_bytes: int | None = None


@dataclass(frozen=True)
class AgentAllowance:
    """``allowance_bytes`` the agent may still send today (``None`` = unmetered), ``bandwidth_bps`` its pace
    (0 = no budget cap), ``held``: paused by the budget; ``capped``: its own daily cap is what holds it."""

    allowance_bytes: int | None
    bandwidth_bps: int
    held: bool
    capped: bool


def _pace(allowance: int, horizon_s: float) -> int:
    """``allowance ÷ horizon`` rounded down to one significant digit (fewer republished assignments)."""
    rate = int(allowance / horizon_s)
    if rate < 10:
        return rate
    scale: int = 10 ** (len(str(rate)) - 1)
    return rate // scale * scale


def daily_cap(budget: SiteBudget, own: int | None = None) -> int:
    """An agent's daily cap: its own (an operator's override) if given, else its site's; 0 = none."""
    return max(0, own) if own is not None else budget.agent_daily_bytes


def agent_left(budget: SiteBudget, today_bytes: int, own: int | None = None) -> int | None:
    """What an agent's daily cap (``own``, else the site's) leaves it today (``None``: no cap)."""
    cap = daily_cap(budget, own)
    if cap <= 0:
        return None
    return max(0, cap - budget.billed(today_bytes))


def allowances(plan: SitePlan, needs: Mapping[str, AgentNeed]) -> dict[str, AgentAllowance]:
    """Each agent's share of what the site has left today, limited by its own cap, and its pace."""
    budget = plan.budget
    own = {key: agent_left(budget, need.today_bytes, need.daily_cap_bytes) for key, need in needs.items()}
    if budget.monthly_bytes <= 0:
        shares: dict[str, int | None] = dict(own)
    else:
        claims = {
            key: Claim(float(min(_demand(need), left if left is not None else plan.left_today)), need.weight)
            for key, need in needs.items()
            if (left := own[key]) is None or left > 0
        }
        split = max_min_share(plan.left_today, claims) if plan.left_today > 0 and claims else {}
        shares = {key: min(split.get(key, 0), plan.left_today) for key in needs}
    result = {}
    for key in needs:
        share = shares[key]
        if share is None:
            result[key] = AgentAllowance(None, 0, held=False, capped=False)
            continue
        pace = _pace(share, budget.horizon_s)
        held = pace < MIN_PACE_BPS
        result[key] = AgentAllowance(share, 0 if held else pace, held=held, capped=own[key] == 0)
    return result


def in_flight_fit(concurrency: int, part_size: int, allowance_bytes: int) -> tuple[int, int]:
    """(concurrency, part size) so the bytes in flight fit what the agent may still send.

    A part's bytes are measured when the part completes and a hold stops only *new* parts, so whatever is in
    flight when the allowance runs out goes out on top of it. Keep concurrency × part size within the
    allowance, never below one part of the smallest size S3 takes (``MIN_PART_SIZE``): the overshoot of a
    hold is then at most one small part instead of concurrency × part size."""
    if concurrency * part_size <= allowance_bytes:  # also 0 (no new parts): nothing in flight
        return concurrency, part_size
    part = max(MIN_PART_SIZE, min(part_size, allowance_bytes))
    return max(1, min(concurrency, allowance_bytes // part)), part


def _demand(need: AgentNeed) -> int:
    return need.backlog_bytes if need.backlog_bytes > 0 else IDLE_DEMAND_BYTES


def site_usage(agent_usage: Mapping[str, Usage], sites: Mapping[str, str]) -> dict[str, Usage]:
    """Per site, the sum of its agents' usage (``sites``: agent id → site)."""
    totals: dict[str, Usage] = {}
    for agent_id, usage in agent_usage.items():
        site = sites.get(agent_id, "")
        have = totals.get(site, Usage())
        totals[site] = Usage(have.month_bytes + usage.month_bytes, have.today_bytes + usage.today_bytes)
    return totals


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB"


def hold_reason(site: str, plan: SitePlan) -> str:
    """Why a site's uploads are held by its budget (``plan.held``)."""
    where = f"site {site}" if site else "the site"
    budget = plan.budget
    if plan.month_spent:
        return (
            f"monthly budget of {where} spent: {gb(plan.used_month)} of {gb(budget.monthly_bytes)}; "
            f"resumes on {plan.month.end.date().isoformat()}"
        )
    return (
        f"daily allowance of {where} spent: {gb(plan.used_today)} of {gb(plan.allowance_today)} today "
        f"({gb(plan.left_month)} of {gb(budget.monthly_bytes)} left for {plan.days_left} days); "
        f"resumes on {plan.day.end.date().isoformat()}"
    )


class BudgetOverride(Protocol):
    """What ``override_reason`` reads of an operator's override (``controller.policy.inputs.OverrideView``)."""

    @property
    def who(self) -> str: ...
    @property
    def monthly_budget_bytes(self) -> int | None: ...
    @property
    def daily_cap_bytes(self) -> int | None: ...


def override_reason(override: BudgetOverride | None) -> str:
    """What an operator set of an agent's budget (its site's monthly budget, its daily cap), "" if nothing."""
    if override is None:
        return ""
    parts = [
        f"{name} {gb(value) if value else 'none'}"
        for name, value in (("monthly budget", override.monthly_budget_bytes), ("daily cap", override.daily_cap_bytes))
        if value is not None
    ]
    return f"operator {override.who}: {', '.join(parts)}" if parts else ""


def cap_reason(plan: SitePlan, today_bytes: int, own: int | None = None) -> str:
    budget = plan.budget
    return (
        f"daily cap of the agent spent: {gb(budget.billed(today_bytes))} of {gb(daily_cap(budget, own))}; "
        f"resumes on {plan.day.end.date().isoformat()}"
    )


def pace_reason(site: str, plan: SitePlan, allowance: AgentAllowance) -> str:
    where = f"site {site}" if site else "the site"
    if plan.budget.monthly_bytes <= 0:
        return f"daily cap: {gb(allowance.allowance_bytes or 0)} left today"
    return (
        f"budget of {where}: {gb(plan.used_month)} of {gb(plan.budget.monthly_bytes)} this month, "
        f"{gb(allowance.allowance_bytes or 0)} of {gb(plan.left_today)} left today for this agent"
    )
