"""The recordings list read from the catalog table (``controller.store.models.Recording``); reads only.

Keyset pagination: a page is "the first ``limit`` rows after this position" in the order ``(sort column, id)``,
each sort served by an index on exactly those two columns (migration 0004; with an agent or site filter and the
default sort, the ``(agent_id, recorded_at)`` and ``(site, recorded_at)`` indexes serve). A row whose sort
value is unknown (``recorded_at`` or ``duration_s`` still ``None``: pending, failed) comes after every known
one, in either order: the list is read as two segments, the known values, then the unknown ones by id, so
both stay index scans. The count is capped (``COUNT_CAP``): counting a million rows on every page would cost
more than the page.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from controller.store.database import as_utc, to_db_time
from controller.store.models import Recording
from dashboard.recordings_view import (
    COUNT_CAP,
    NULLABLE_SORTS,
    CursorCodec,
    Position,
    RecordingDetail,
    RecordingFilter,
    RecordingPage,
    RecordingRow,
    RecordingSort,
    RecordingView,
)

_ROW_FIELDS = tuple(f.name for f in fields(RecordingRow))
_TIME_FIELDS = frozenset({"uploaded_at", "recorded_at", "cataloged_at"})
_COLUMNS: tuple[Any, ...] = tuple(col(getattr(Recording, name)).label(name) for name in _ROW_FIELDS)
_SORT_COLUMNS: dict[RecordingSort, Any] = {
    RecordingSort.RECORDED_AT: col(Recording.recorded_at),
    RecordingSort.UPLOADED_AT: col(Recording.uploaded_at),
    RecordingSort.DURATION: col(Recording.duration_s),
    RecordingSort.SIZE: col(Recording.original_bytes),
    RecordingSort.AGENT: col(Recording.agent_id),
}
_id_col: Any = col(Recording.id)


def conditions(flt: RecordingFilter) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions (all must hold)."""
    where: list[ColumnElement[bool]] = []
    for value, column in (
        (flt.agent, Recording.agent_id),
        (flt.site, Recording.site),
        (flt.codec, Recording.codec),
        (flt.status, Recording.status),
    ):
        if value:
            where.append(col(column) == value)
    if flt.recorded_from is not None:
        where.append(col(Recording.recorded_at) >= to_db_time(flt.recorded_from))
    if flt.recorded_to is not None:
        where.append(col(Recording.recorded_at) < to_db_time(flt.recorded_to))
    if flt.min_duration_s is not None:
        where.append(col(Recording.duration_s) >= flt.min_duration_s)
    if flt.max_duration_s is not None:
        where.append(col(Recording.duration_s) <= flt.max_duration_s)
    return where


def _db_value(value: Any) -> Any:
    return to_db_time(value) if isinstance(value, datetime) else value


def known_segment(view: RecordingView, where: list[ColumnElement[bool]], limit: int) -> Select[Any]:
    """Rows whose sort value is known, after ``view.after`` in ``(sort column, id)`` order."""
    column = _SORT_COLUMNS[view.sort]
    query = sa_select(*_COLUMNS).where(*where)
    if view.sort in NULLABLE_SORTS:
        query = query.where(column.is_not(None))
    if view.after is not None:
        key = tuple_(column, _id_col)
        start = tuple_(literal(_db_value(view.after.value), column.type), literal(view.after.id, _id_col.type))
        query = query.where(key < start if view.descending else key > start)
    order = (column.desc(), _id_col.desc()) if view.descending else (column.asc(), _id_col.asc())
    return query.order_by(*order).limit(limit)


def _unknown_segment(view: RecordingView, where: list[ColumnElement[bool]], limit: int) -> Select[Any]:
    """Rows whose sort value is unknown, by id in the view's order, after ``view.after`` if it is one of them."""
    query = sa_select(*_COLUMNS).where(*where, _SORT_COLUMNS[view.sort].is_(None))
    if view.after is not None and view.after.value is None:
        query = query.where(_id_col < view.after.id if view.descending else _id_col > view.after.id)
    return query.order_by(_id_col.desc() if view.descending else _id_col.asc()).limit(limit)


def _row(found: Any) -> RecordingRow:
    mapping = found._mapping
    values: dict[str, Any] = {name: mapping[name] for name in _ROW_FIELDS}
    for name in _TIME_FIELDS:
        values[name] = as_utc(values[name])
    return RecordingRow(**values)


def _rows(session: Session, view: RecordingView, wanted: int) -> list[RecordingRow]:
    """Up to ``wanted`` rows of the view from its position: the known values, then (if the page is not full)
    the unknown ones."""
    where = conditions(view.filter)
    rows: list[RecordingRow] = []
    in_unknown = view.after is not None and view.after.value is None
    if not in_unknown:
        rows = [_row(r) for r in session.execute(known_segment(view, where, wanted))]
    if view.sort in NULLABLE_SORTS and len(rows) < wanted:
        rows += [_row(r) for r in session.execute(_unknown_segment(view, where, wanted - len(rows)))]
    return rows


def _sort_value(row: RecordingRow, sort: RecordingSort) -> Any:
    return {
        RecordingSort.RECORDED_AT: row.recorded_at,
        RecordingSort.UPLOADED_AT: row.uploaded_at,
        RecordingSort.DURATION: row.duration_s,
        RecordingSort.SIZE: row.original_bytes,
        RecordingSort.AGENT: row.agent_id,
    }[sort]


def capped_count(session: Session, flt: RecordingFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows pass the filter, counting at most ``cap`` (then ``(cap, True)``)."""
    matching = sa_select(_id_col).where(*conditions(flt)).limit(cap + 1).subquery()
    count = int(session.execute(sa_select(func.count()).select_from(matching)).scalar_one())
    return min(count, cap), count > cap


def recordings_page(session: Session, view: RecordingView, codec: CursorCodec) -> RecordingPage:
    """One page of the view, the cursor of the next (if there is one) and the capped count."""
    if view.filter.empty_because:
        return RecordingPage([], None, 0, False, view.sort, view.order, view.limit)
    rows = _rows(session, view, view.limit + 1)
    more = len(rows) > view.limit
    rows = rows[: view.limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = codec.encode(view, Position(_sort_value(last, view.sort), last.id))
    matching, capped = capped_count(session, view.filter)
    return RecordingPage(
        items=rows,
        next_cursor=next_cursor,
        matching=matching,
        matching_capped=capped,
        sort=view.sort,
        order=view.order,
        limit=view.limit,
    )


def recording_detail(session: Session, recording_id: int) -> RecordingDetail | None:
    extra: tuple[Any, ...] = (
        col(Recording.recorder_metadata).label("recorder_metadata"),
        col(Recording.upload_event_id),
    )
    found = session.execute(sa_select(*_COLUMNS, *extra).where(_id_col == recording_id)).first()
    if found is None:
        return None
    metadata, upload_event_id = found[-2:]
    return RecordingDetail(
        recording=_row(found), recorder_metadata=dict(metadata or {}), upload_event_id=upload_event_id
    )
