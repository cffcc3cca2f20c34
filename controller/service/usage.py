"""The tick's usage read: each agent's bytes sent in its site's budget month and local day, into the
``FleetView`` (``agent_usage``, ``site_usage``). Read only when a site is metered, and at most every
``refresh_s``: a site is metered by its configured budget or an operator's override (``FleetView.budget_for``,
``daily_cap_for``). Between reads a metered agent sends at most its pace × the time since, which is a fraction of its
allowance as long as ``refresh_s`` is well below the pacing horizon (a quarter of it at most)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from controller.policy.budget import Usage, day_of, is_metered, month_of, site_usage
from controller.policy.inputs import FleetView, PolicyConfig
from controller.store.usage import load_usage

#: the longest time between two reads of the usage table
MAX_REFRESH_S = 15.0

Periods = tuple[datetime, datetime]


class UsageReader:
    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        horizons = [b.horizon_s for b in (config.default_budget, *config.site_budgets.values()) if b.metered]
        self.refresh_s = min([MAX_REFRESH_S, *(h / 4 for h in horizons)])
        self.metered = bool(horizons)
        self._read: dict[Periods, tuple[datetime, dict[str, Usage]]] = {}
        self.reads = 0

    def attach(self, session: Session, fleet: FleetView, now: datetime) -> FleetView:
        """``fleet`` with the usage of the agents of its metered sites."""
        if not self.metered and not fleet.budget_overridden:
            return fleet
        periods: dict[str, Periods] = {}
        for site in {agent.site for agent in fleet.agents}:
            budget = fleet.budget_for(site, self.config)
            caps = (fleet.daily_cap_for(agent.agent_id) for agent in fleet.agents if agent.site == site)
            if is_metered(budget, caps):
                periods[site] = (month_of(now, budget).start, day_of(now, budget).start)
        usage = {key: self._usage(session, key, now) for key in set(periods.values())}
        agent_usage = {
            agent.agent_id: usage[periods[agent.site]].get(agent.agent_id, Usage())
            for agent in fleet.agents
            if agent.site in periods
        }
        sites = site_usage(agent_usage, {agent.agent_id: agent.site for agent in fleet.agents})
        return replace(fleet, agent_usage=agent_usage, site_usage=sites)

    def _usage(self, session: Session, key: Periods, now: datetime) -> dict[str, Usage]:
        kept = self._read.get(key)
        if kept is not None and 0 <= (now - kept[0]).total_seconds() < self.refresh_s:
            return kept[1]
        usage = load_usage(session, *key)
        self.reads += 1
        self._read = {k: v for k, v in self._read.items() if k[1] >= key[1]} | {key: (now, usage)}
        return usage
