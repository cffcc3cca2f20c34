"""Metered links: what each agent sent, per UTC hour, from its telemetry's ``bytes_uploaded_total`` counter.

The counter is the part bytes the agent's uploader got accepted by S3 since its process started (a retried part
counts once). Each telemetry written adds its growth since the stored reading to the hour it was sent in; a counter
lower than the stored one is a restarted agent, whose whole counter is new. Not counted: failed attempts of a part,
HTTP/TLS framing and MQTT traffic (the policy's ``budget_overhead_fraction``), and what a restarted agent sent after
its last telemetry before the restart. With several controllers, two batches of one agent written at the same time
may count one growth twice (over-counting, which holds uploads early, never late). See docs/controller.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select
from sqlmodel import Session

from controller.policy.budget import (
    SiteBudget,
    SitePlan,
    Usage,
    day_of,
    is_metered,
    month_of,
    overridden,
    site_plan,
    site_usage,
)
from controller.policy.inputs import PolicyConfig
from controller.store.database import as_utc, to_db_time, upsert
from controller.store.models import Agent, AgentUsage, OperatorOverride
from controller.store.tables import column, table_of

#: usage hours are kept at least this long (this and last budget month), longer with the telemetry's retention
USAGE_KEPT = timedelta(days=64)
USAGE = table_of(AgentUsage)
AGENT_ID, UPLOADED, TELEMETRY_AT = column(Agent.id), column(Agent.bytes_uploaded_total), column(Agent.telemetry_at)
USAGE_AGENT, USAGE_HOUR, USAGE_BYTES = (
    column(AgentUsage.agent_id),
    column(AgentUsage.hour),
    column(AgentUsage.bytes_sent),
)


def growth(stored: int, reported: int) -> int:
    """Bytes sent between two readings of the counter: a lower reading is a restart (counting from 0 again)."""
    return reported - stored if reported >= stored else reported


def hour_of(at: datetime) -> datetime:
    return to_db_time(at).replace(minute=0, second=0, microsecond=0)


def record_usage(session: Session, latest: Mapping[str, tuple[int, datetime]]) -> None:
    """Add each agent's counter growth (``latest``: agent id → the batch's newest counter and its time) to its
    hour, before the agent row takes the new reading. Older than the stored reading (reordered): not counted."""
    if not latest:
        return
    query = select(AGENT_ID, UPLOADED, TELEMETRY_AT).where(AGENT_ID.in_(sorted(latest)))
    stored = {row.id: (row.bytes_uploaded_total, as_utc(row.telemetry_at)) for row in session.execute(query)}
    rows = []
    for agent_id, (counter, at) in sorted(latest.items()):
        before, before_at = stored.get(agent_id, (0, None))
        if before_at is not None and to_db_time(at) < before_at:
            continue
        sent = growth(before, counter)
        if sent > 0:
            rows.append({"agent_id": agent_id, "hour": hour_of(at), "bytes_sent": sent})
    if rows:
        stmt = upsert(session, USAGE)
        added = {USAGE_BYTES.key: USAGE_BYTES + stmt.excluded[USAGE_BYTES.key]}
        session.execute(stmt.on_conflict_do_update(index_elements=[USAGE_AGENT, USAGE_HOUR], set_=added), rows)


def load_usage(session: Session, month_start: datetime, day_start: datetime) -> dict[str, Usage]:
    """Each agent's bytes since ``month_start`` and since ``day_start`` (by the hour they were reported in)."""
    since_day = func.sum(case((to_db_time(day_start) <= USAGE_HOUR, USAGE_BYTES), else_=0))
    query = (
        select(USAGE_AGENT, func.sum(USAGE_BYTES), since_day)
        .where(to_db_time(month_start) <= USAGE_HOUR)
        .group_by(USAGE_AGENT)
    )
    return {agent_id: Usage(int(month or 0), int(day or 0)) for agent_id, month, day in session.execute(query)}


def prune_usage(session: Session, *, before: datetime) -> int:
    """Delete usage hours older than ``before`` (commits); returns the number of rows."""
    result = session.execute(delete(USAGE).where(to_db_time(before) > USAGE_HOUR))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Metered:
    """What metered sites used: each agent's usage (its site's month and day), each metered site's plan (its
    budget with the operator's override) and the agents' own daily caps an operator set (absent: the site's)."""

    agents: dict[str, Usage]
    sites: dict[str, SitePlan]
    caps: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Budgets:
    budgets: dict[str, SiteBudget]
    caps: dict[str, int]
    metered: set[str]


def _budgets(session: Session, config: PolicyConfig, agent_sites: Mapping[str, str]) -> Budgets:
    """Every site's budget (``[policy.sites]`` with its override), the agents' own caps, the metered sites."""
    rows = [
        o
        for o in session.scalars(select(OperatorOverride))
        if o.monthly_budget_bytes is not None or o.daily_cap_bytes is not None
    ]
    site_rows = {o.target: o for o in rows if o.scope == "site"}
    caps = {o.target: o.daily_cap_bytes for o in rows if o.scope == "agent" and o.daily_cap_bytes is not None}
    budgets = {
        site: overridden(
            config.budget_for(site),
            site_rows[site].monthly_budget_bytes if site in site_rows else None,
            site_rows[site].daily_cap_bytes if site in site_rows else None,
        )
        for site in {*config.site_budgets, *site_rows, *agent_sites.values()}
    }
    metered = {
        site
        for site, budget in budgets.items()
        if is_metered(budget, (caps.get(agent) for agent, of in agent_sites.items() if of == site))
    }
    return Budgets(budgets, caps, metered)


def metered_usage(session: Session, config: PolicyConfig, now: datetime) -> Metered:
    """Usage of every agent of a metered site and the plan of every metered site (configured or overridden, or
    with agents), as the policy computes it at ``now`` (for the alert rules and the dashboard)."""
    agent_sites = {row.id: row.site or "" for row in session.execute(select(AGENT_ID, column(Agent.site)))}
    found = _budgets(session, config, agent_sites)
    budgets = {site: found.budgets[site] for site in found.metered}
    periods = {site: (month_of(now, b).start, day_of(now, b).start) for site, b in budgets.items()}
    read = {key: load_usage(session, *key) for key in set(periods.values())}
    agents = {
        agent_id: read[periods[site]].get(agent_id, Usage())
        for agent_id, site in agent_sites.items()
        if site in periods
    }
    totals = site_usage(agents, agent_sites)
    plans = {site: site_plan(budgets[site], totals.get(site, Usage()), now) for site in sorted(budgets)}
    return Metered(agents, plans, found.caps)
