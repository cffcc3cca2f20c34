"""Controller heartbeats, and the pure rule that splits the sites among the live controllers.

Every controller upserts its row each full tick and reads which controllers were seen within the
time-to-live. Sites are dealt out in a stable hashed order, so each live controller runs the full tick
for its share only; when one stops, its sites move to the others once its heartbeat expires. Overlap
during a change is harmless (stale proposals are skipped, versions are guarded by the database).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from controller.store.database import as_utc, to_db_time, upsert
from controller.store.models import ControllerInstance
from controller.store.tables import INSTANCE, column, incoming


def heartbeat(
    session: Session,
    controller_id: str,
    *,
    now: datetime,
    started_at: datetime,
    ttl_s: float,
    stored_through: datetime | None = None,
) -> list[str]:
    """Record that ``controller_id`` is alive (and its ingest's watermark, ``stored_through``); return the ids of
    every live controller, sorted (commits)."""
    instance_id, last_seen = column(ControllerInstance.id), column(ControllerInstance.last_seen)
    watermark = column(ControllerInstance.stored_through)
    row = {
        "id": controller_id,
        "started_at": to_db_time(started_at),
        "last_seen": to_db_time(now),
        "stored_through": None if stored_through is None else to_db_time(stored_through),
    }
    stmt = upsert(session, INSTANCE)
    renewed = stmt.on_conflict_do_update(
        index_elements=[instance_id], set_=incoming(stmt, [last_seen.key, watermark.key])
    )
    session.execute(renewed, [row])
    cutoff = to_db_time(now - timedelta(seconds=ttl_s))
    live = list(session.exec(select(instance_id).where(last_seen >= cutoff)))
    session.commit()
    return sorted(set(live) | {controller_id})


#: an ingest watermark further behind than this is not waited for (a controller whose ingest is stuck must not
#: keep the whole fleet online): silence is then measured from ``now`` minus this
WATERMARK_HOLD_MAX = timedelta(minutes=10)


def heard_until(session: Session, live: Sequence[str], now: datetime) -> datetime:
    """The time up to which the ``live`` controllers have stored every message they received: the earliest of
    their ingest watermarks, at most ``now``, at least ``now - WATERMARK_HOLD_MAX``. With shared subscriptions an
    agent's messages may reach any of them, so an agent is silent only if nothing of it was stored for a while
    before this time, not before ``now``."""
    instance_id, watermark = column(ControllerInstance.id), column(ControllerInstance.stored_through)
    earliest = as_utc(session.exec(select(func.min(watermark)).where(instance_id.in_(list(live)))).one())
    return max(now - WATERMARK_HOLD_MAX, min(now, earliest or now))


def sites_for(controller_id: str, live: Sequence[str], sites: Iterable[str]) -> set[str]:
    """The sites ``controller_id`` runs the full tick for among the ``live`` controllers (pure).

    Sites in a stable hashed order are dealt round-robin: every site to exactly one controller, the
    counts differ by at most one, and every controller computes the same split.
    """
    members = sorted(set(live) | {controller_id})
    index = members.index(controller_id)
    ordered = sorted(set(sites), key=lambda site: (zlib.crc32(site.encode()), site))
    return {site for rank, site in enumerate(ordered) if rank % len(members) == index}


def forget(session: Session, controller_id: str) -> None:
    """A clean stop: leave at once, so the others take over this controller's sites (commits)."""
    session.execute(INSTANCE.delete().where(column(ControllerInstance.id) == controller_id))
    session.commit()
