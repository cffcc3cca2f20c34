"""Keeping the ``agent`` and ``telemetry_sample`` tables true over time: provisioned sites, stale agents
offline, old telemetry pruned. Each function takes a ``Session`` and commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, delete, or_
from sqlmodel import Session

from controller.store.agent_writes import AGENT, SAMPLE
from controller.store.database import to_db_time


def sync_sites(session: Session, sites: Mapping[str, str]) -> int:
    """Give every stored agent its provisioned site (not listed: no site); returns how many changed (commits).
    Run at start: the configuration may have moved agents since the rows were written."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for agent_id, site in sites.items():
        by_site[site].append(agent_id)
    changed = 0
    for site, ids in sorted(by_site.items()):
        result = session.execute(AGENT.update().where(AGENT.c.id.in_(ids), AGENT.c.site != site).values(site=site))
        changed += int(getattr(result, "rowcount", 0) or 0)
    unlisted = session.execute(AGENT.update().where(AGENT.c.id.not_in(list(sites)), AGENT.c.site != "").values(site=""))
    changed += int(getattr(unlisted, "rowcount", 0) or 0)
    session.commit()
    return changed


def mark_stale_offline(session: Session, *, cutoff: datetime, now: datetime) -> list[str]:
    """Agents marked online whose last message is older than ``cutoff`` go offline (commits)."""
    stale = and_(AGENT.c.online, or_(AGENT.c.last_seen.is_(None), AGENT.c.last_seen < to_db_time(cutoff)))
    ids = [row[0] for row in session.execute(AGENT.select().with_only_columns(AGENT.c.id).where(stale))]
    if ids:
        session.execute(
            AGENT.update().where(stale, AGENT.c.id.in_(ids)).values(online=False, offline_since=to_db_time(now))
        )
    session.commit()
    return sorted(ids)


def prune_telemetry(session: Session, *, before: datetime) -> int:
    """Delete telemetry history older than ``before`` (commits); returns the number of rows."""
    result = session.execute(delete(SAMPLE).where(SAMPLE.c.at < to_db_time(before)))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
