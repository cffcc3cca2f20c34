"""The central node: its page (``/central``, charts) and its JSON (``/api/central``), from the controller's central
monitor (``central_sample``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dashboard.central import CentralSeries, central_series
from dashboard.deps import CtxDep, DbDep, UserDep, WebSessionDep
from dashboard.rendering import render
from dashboard.routes.api import RangeKey
from dashboard.routes.errors import errors
from dashboard.routes.pages import DEFAULT_RANGE, RANGES

router = APIRouter()
ControllerId = Annotated[
    str | None,
    Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="whose monitor (default: the latest to report)"),
]


@router.get("/api/central", tags=["central"], responses=errors(401, 503))
def central_api(
    ctx: CtxDep,
    db: DbDep,
    _user: UserDep,
    span: RangeKey = DEFAULT_RANGE,
    controller: ControllerId = None,
    points: Annotated[int, Query(ge=10, le=5000)] = 600,
) -> CentralSeries:
    """The central node over the range, oldest first, thinned to at most ``points``: CPU, memory, disk, network,
    the broker's figures and the S3 probe, as the controller's central monitor measured them."""
    return central_series(db, ctx.clock() - RANGES[span], controller, points)


@router.get("/central", name="central_page", include_in_schema=False)
def central_page(
    request: Request,
    ctx: CtxDep,
    db: DbDep,
    session: WebSessionDep,
    user: UserDep,
    span: Annotated[str, Query(alias="range")] = DEFAULT_RANGE,
    controller: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    span = span if span in RANGES else DEFAULT_RANGE
    series = central_series(db, ctx.clock() - RANGES[span], controller, max_points=1)
    fleet = ctx.snapshots.get()
    return render(
        request,
        ctx,
        session,
        user,
        "central.html",
        ranges=list(RANGES),
        range=span,
        series=series,
        latest=series.points[-1] if series.points else None,
        failures_today=fleet.totals.failures_today,
        agent_errors=sum(r.errors_total for r in fleet.rows),
        agent_retries=sum(r.retries_total for r in fleet.rows),
    )
