"""The ``central_sample`` table: write one round, read a time range, and keep it small over time (rows older
than a day merged into one per bucket by ``controller.central.readings.downsample``, rows older than the
retention deleted). Each function takes a ``Session``; the writers commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, insert, select
from sqlmodel import Session

from controller.central.readings import downsample
from controller.store.database import as_utc, to_db_time
from controller.store.models import CentralSample
from controller.store.tables import CENTRAL, column

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COLUMNS = tuple(name for name in CentralSample.model_fields if name != "id")


def add_sample(session: Session, controller_id: str, row: Mapping[str, Any]) -> None:
    values = {**row, "controller_id": controller_id, "at": to_db_time(row["at"])}
    session.execute(insert(CENTRAL).values(values))
    session.commit()


def _rows(session: Session, where: Any) -> list[dict[str, Any]]:
    query = select(CENTRAL).where(where).order_by(column(CentralSample.at), column(CentralSample.id))
    rows = [dict(row._mapping) for row in session.execute(query)]
    for row in rows:
        row["at"] = as_utc(row["at"])
    return rows


def samples_since(session: Session, since: datetime, controller_id: str | None = None) -> list[dict[str, Any]]:
    """Rows from ``since`` on, oldest first, as dictionaries (times in UTC)."""
    where = column(CentralSample.at) >= to_db_time(since)
    if controller_id is not None:
        where = where & (column(CentralSample.controller_id) == controller_id)
    return _rows(session, where)


def thin_samples(session: Session, *, older_than: datetime, bucket: timedelta) -> int:
    """Merge every controller's full-resolution rows older than ``older_than`` into one row per ``bucket``
    (commits); returns how many rows went away. ``older_than`` is taken down to a bucket's start, so a bucket is
    merged whole."""
    whole = (older_than - EPOCH) // bucket
    older_than = EPOCH + whole * bucket
    ctl = column(CentralSample.controller_id)
    old = (column(CentralSample.at) < to_db_time(older_than)) & ~column(CentralSample.downsampled)
    removed = 0
    for (controller_id,) in session.execute(select(ctl).where(old).distinct()).all():
        rows = _rows(session, old & (ctl == controller_id))
        merged = downsample(rows, bucket, EPOCH)
        session.execute(delete(CENTRAL).where(column(CentralSample.id).in_([r["id"] for r in rows])))
        for row in merged:
            values = {name: row.get(name) for name in _COLUMNS}
            session.execute(insert(CENTRAL).values({**values, "at": to_db_time(row["at"]), "downsampled": True}))
        removed += len(rows) - len(merged)
    session.commit()
    return removed


def prune_samples(session: Session, *, before: datetime) -> int:
    result = session.execute(delete(CENTRAL).where(column(CentralSample.at) < to_db_time(before)))
    session.commit()
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def sample_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(CENTRAL)).scalar_one())
