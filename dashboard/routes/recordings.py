"""The recordings list: the page ``/recordings`` and the JSON API ``/api/recordings`` (and one row by id).

Both take the same query string (``RecordingViewDep``) and read the catalog through
``dashboard.recordings_query``; viewers and operators alike may read. Each row links to
``/recordings/{id}``, the recording's own page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BeforeValidator

from dashboard.deps import CtxDep, DbDep, UserDep, WebSessionDep
from dashboard.recordings_query import recording_detail, recordings_page
from dashboard.recordings_view import (
    COUNT_CAP,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NATURAL_ORDER,
    CursorCodec,
    CursorError,
    RecordingDetail,
    RecordingFilter,
    RecordingPage,
    RecordingSort,
    RecordingStatus,
    RecordingView,
    SortOrder,
)
from dashboard.rendering import render
from dashboard.routes.errors import ErrorDetail, errors

api = APIRouter(prefix="/api", tags=["recordings"], responses=errors(401, 503))
pages = APIRouter(include_in_schema=False)

#: printable text of at most the column's length: no control characters (PostgreSQL stores no NUL)
_TEXT = r"^[^\x00-\x1f\x7f]*$"
#: 409, not 400: the cursor is well formed but does not belong to this query (or this dashboard's key); and a
#: request the OpenAPI document calls valid is answered 2xx, 3xx, 401, 403, 404 or 409 (the fuzz test holds us to it)
BAD_CURSOR: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "the cursor was not made by this dashboard for this query"}
}
NO_RECORDING: dict[int | str, dict[str, Any]] = {404: {"model": ErrorDetail, "description": "no such recording"}}


def _not_a_number(value: object) -> object:
    """Pydantic reads a number (``?from=5865559``) as Unix seconds; the API documents ISO 8601 text and keeps to
    it, so a number is a 422, not a time the user did not mean."""
    if isinstance(value, int | float | str) and not isinstance(value, bool) and _is_number(value):
        raise ValueError("an ISO 8601 date and time, not a number")
    return value


def _is_number(value: int | float | str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


#: a query parameter's time: ISO 8601 only
IsoTime = Annotated[datetime | None, BeforeValidator(_not_a_number)]


def _utc(value: datetime | None) -> datetime | None:
    """A time as UTC (one without a zone is taken as UTC; one beyond year 1 or 9999 in UTC is clamped there)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def recording_filter(
    agent: Annotated[str, Query(max_length=64, pattern=_TEXT, description="only this agent's (its id)")] = "",
    site: Annotated[str, Query(max_length=64, pattern=_TEXT, description="only this site's")] = "",
    codec: Annotated[str, Query(max_length=16, pattern=_TEXT, description="how it is stored: flac, raw, …")] = "",
    state: Annotated[RecordingStatus | None, Query(alias="status", description="only rows in this state")] = None,
    recorded_from: Annotated[
        IsoTime, Query(alias="from", description="recorded at or after (ISO 8601; no zone = UTC)")
    ] = None,
    recorded_to: Annotated[IsoTime, Query(alias="to", description="recorded before (ISO 8601; no zone = UTC)")] = None,
    min_duration_s: Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)] = None,
    max_duration_s: Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)] = None,
) -> RecordingFilter:
    return RecordingFilter(
        agent=agent,
        site=site,
        codec=codec,
        status=state,
        recorded_from=_utc(recorded_from),
        recorded_to=_utc(recorded_to),
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
    )


def recording_view(
    ctx: CtxDep,
    flt: Annotated[RecordingFilter, Depends(recording_filter)],
    sort: Annotated[RecordingSort, Query(description="the order's column")] = RecordingSort.RECORDED_AT,
    order: Annotated[
        SortOrder | None, Query(description="default: newest, longest, largest first; agents A to Z")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=1024, pattern=r"^[A-Za-z0-9_.-]+$", description="`next_cursor` of the previous page"),
    ] = None,
) -> RecordingView:
    view = RecordingView(filter=flt, sort=sort, order=order or NATURAL_ORDER[sort], limit=limit)
    if cursor is None:
        return view
    try:
        after = CursorCodec(ctx.config.secret_key).decode(cursor, view)
    except CursorError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return RecordingView(filter=flt, sort=view.sort, order=view.order, limit=limit, after=after)


RecordingViewDep = Annotated[RecordingView, Depends(recording_view)]
RecordingIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="the recording's id")]


def _page(ctx: CtxDep, db: DbDep, view: RecordingView) -> RecordingPage:
    return recordings_page(db, view, CursorCodec(ctx.config.secret_key))


@api.get("/recordings", responses=BAD_CURSOR)
def list_recordings(ctx: CtxDep, db: DbDep, _user: UserDep, view: RecordingViewDep) -> RecordingPage:
    """Catalogued recordings (pending and failed ones too), filtered, sorted and paged by cursor: pass
    ``next_cursor`` back as ``cursor`` with the same filter and sort for the next page. ``matching`` is exact
    up to 10,000 rows; beyond, it is 10,000 and ``matching_capped`` is true."""
    return _page(ctx, db, view)


@api.get("/recordings/{recording_id}", responses=NO_RECORDING)
def get_recording(db: DbDep, _user: UserDep, recording_id: RecordingIdPath) -> RecordingDetail:
    """One recording with the recorder's own metadata."""
    detail = recording_detail(db, recording_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording {recording_id}")
    return detail


@pages.get("/recordings", name="recordings_page")
def recordings_list_page(
    request: Request,
    ctx: CtxDep,
    db: DbDep,
    session: WebSessionDep,
    user: UserDep,
    view: RecordingViewDep,
) -> Response:
    """The recordings table; the filter form and the sortable headers make new first pages."""
    fleet = ctx.snapshots.get().rows
    choices: dict[str, Any] = {
        "agents": sorted(r.agent_id for r in fleet),
        "sites": sorted({r.site for r in fleet if r.site}),
        "codecs": ["flac", "raw"],
    }
    return render(
        request,
        ctx,
        session,
        user,
        "recordings.html",
        page=_page(ctx, db, view),
        view=view,
        sorts=list(RecordingSort),
        statuses=list(RecordingStatus),
        count_cap=COUNT_CAP,
        **choices,
    )


#: what ``create_app`` includes: the page and the API
router = APIRouter()
router.include_router(pages)
router.include_router(api)
