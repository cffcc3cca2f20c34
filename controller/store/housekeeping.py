"""Keeping the ``agent`` and ``telemetry_sample`` tables true over time: provisioned sites, stale agents
offline, old telemetry pruned. Each function takes a ``Session`` and commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, delete, or_
from sqlmodel import Session, select

from controller.store.database import lock_agent_writes, to_db_time
from controller.store.models import Agent, TelemetrySample
from controller.store.tables import AGENT, SAMPLE, column


def sync_sites(session: Session, sites: Mapping[str, str]) -> int:
    """Give every stored agent its provisioned site (not listed: no site); returns how many changed (commits).
    Run at start: the configuration may have moved agents since the rows were written."""
    lock_agent_writes(session)
    agent_id, agent_site = column(Agent.id), column(Agent.site)
    by_site: dict[str, list[str]] = defaultdict(list)
    for agent, site in sites.items():
        by_site[site].append(agent)
    changed = 0
    for site, ids in sorted(by_site.items()):
        moved = AGENT.update().where(agent_id.in_(ids), agent_site != site).values({agent_site: site})
        changed += session.exec(moved).rowcount
    unlisted = AGENT.update().where(agent_id.not_in(list(sites)), agent_site != "").values({agent_site: ""})
    changed += session.exec(unlisted).rowcount
    session.commit()
    return changed


def mark_stale_offline(session: Session, *, cutoff: datetime, now: datetime) -> list[str]:
    """Agents marked online whose last message is older than ``cutoff`` go offline (commits).

    Never waits for a row lock (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, in key order): a row locked now is being
    written by an ingest batch, i.e. the agent was just heard from; if it is still stale, the next call takes it.
    So this UPDATE cannot deadlock with the ingest's writes."""
    agent_id, online, last_seen = column(Agent.id), column(Agent.online), column(Agent.last_seen)
    stale = and_(online, or_(last_seen.is_(None), last_seen < to_db_time(cutoff)))
    query = select(agent_id).where(stale).order_by(agent_id).with_for_update(skip_locked=True)
    ids = list(session.exec(query))
    if ids:
        offline = {online: False, column(Agent.offline_since): to_db_time(now)}
        session.execute(AGENT.update().where(stale, agent_id.in_(ids)).values(offline))
    session.commit()
    return sorted(ids)


def prune_telemetry(session: Session, *, before: datetime) -> int:
    """Delete telemetry history older than ``before`` (commits); returns the number of rows."""
    result = session.exec(delete(SAMPLE).where(column(TelemetrySample.at) < to_db_time(before)))
    session.commit()
    return result.rowcount
