"""Metered links on the dashboard: each metered site's use against its budget, each agent's use today.

Read from the controller's usage table with the policy's own arithmetic (``controller.store.usage.metered_usage``,
``controller.policy.budget``), so the bar shows what the policy holds uploads by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from controller.policy import PolicyConfig
from controller.policy.budget import SitePlan, agent_left, daily_cap
from controller.store.usage import metered_usage


@dataclass(frozen=True, slots=True)
class SiteBudgetView:
    """A metered site's budget month: bytes are billed (measured + overhead)."""

    site: str
    budget_bytes: int
    used_bytes: int
    allowance_today_bytes: int
    used_today_bytes: int
    left_today_bytes: int
    days_left: int
    month_start: date
    resumes_on: date  # the next budget month's first day
    held: bool
    spent: bool
    agent_daily_cap_bytes: int

    @property
    def used_fraction(self) -> float:
        return min(1.0, self.used_bytes / self.budget_bytes) if self.budget_bytes > 0 else 0.0


@dataclass(frozen=True, slots=True)
class AgentBudgetView:
    """An agent of a metered site: what it sent (billed) this budget month and today, and its daily cap."""

    agent_id: str
    site: str
    used_month_bytes: int
    used_today_bytes: int
    daily_cap_bytes: int  # 0 = none
    left_today_bytes: int | None  # what its cap leaves today; None = no cap
    site_budget: SiteBudgetView | None


def site_view(site: str, plan: SitePlan) -> SiteBudgetView:
    budget = plan.budget
    return SiteBudgetView(
        site=site,
        budget_bytes=budget.monthly_bytes,
        used_bytes=plan.used_month,
        allowance_today_bytes=plan.allowance_today,
        used_today_bytes=plan.used_today,
        left_today_bytes=plan.left_today,
        days_left=plan.days_left,
        month_start=plan.month.start.date(),
        resumes_on=plan.month.end.date() if plan.month_spent else plan.day.end.date(),
        held=plan.held,
        spent=plan.month_spent,
        agent_daily_cap_bytes=budget.agent_daily_bytes,
    )


def site_budgets(db: Session, policy: PolicyConfig, now: datetime) -> list[SiteBudgetView]:
    """Every site with a monthly budget (configured, or with agents), by name."""
    plans = metered_usage(db, policy, now).sites
    return [site_view(site, plan) for site, plan in plans.items() if plan.budget.monthly_bytes > 0]


def agent_budget(db: Session, policy: PolicyConfig, agent_id: str, site: str, now: datetime) -> AgentBudgetView | None:
    """``agent_id``'s use if its site is metered (a monthly budget or a daily cap, configured or an operator's
    override), else ``None``."""
    metered = metered_usage(db, policy, now)
    plan = metered.sites.get(site)
    if plan is None:
        return None
    budget, own = plan.budget, metered.caps.get(agent_id)
    usage = metered.agents.get(agent_id)
    month = usage.month_bytes if usage else 0
    today = usage.today_bytes if usage else 0
    return AgentBudgetView(
        agent_id=agent_id,
        site=site,
        used_month_bytes=budget.billed(month),
        used_today_bytes=budget.billed(today),
        daily_cap_bytes=daily_cap(budget, own),
        left_today_bytes=agent_left(budget, today, own),
        site_budget=site_view(site, plan) if budget.monthly_bytes > 0 else None,
    )
