"""Server-rendered pages: the fleet, one agent, the audit trail; and the override forms."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from dashboard import budgets, overrides, queries
from dashboard.deps import (
    AgentIdPath,
    CsrfDep,
    CtxDep,
    DbDep,
    FleetViewDep,
    OperatorDep,
    SitePath,
    UserDep,
    WebSessionDep,
)
from dashboard.listing import SortKey, StatusFilter, known_versions, view_page
from dashboard.queue_control import queue_panel
from dashboard.rendering import render

router = APIRouter(include_in_schema=False)

RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_RANGE = "1h"
FAVICON = Path(__file__).parents[1] / "static" / "favicon.ico"


@router.get("/favicon.ico", name="favicon")
def favicon() -> FileResponse:
    """The icon browsers ask for on their own (also before login); a file from ``dashboard/static``."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/", name="fleet_page")
def fleet_page(
    request: Request,
    ctx: CtxDep,
    db: DbDep,
    session: WebSessionDep,
    user: UserDep,
    view: FleetViewDep,
) -> Response:
    """Every agent, filtered, sorted and paged on the server; the live stream keeps the page current."""
    snapshot = ctx.snapshots.get()
    return render(
        request,
        ctx,
        session,
        user,
        "fleet.html",
        page=view_page(snapshot.rows, view, ctx.limits),
        view=view,
        totals=snapshot.totals,
        alerts=snapshot.alerts,
        resolved_alerts=snapshot.resolved,
        statuses=list(StatusFilter),
        sort_keys=list(SortKey),
        sites=sorted({r.site for r in snapshot.rows if r.site}),
        versions=known_versions(snapshot.rows),
        budgets=budgets.site_budgets(db, ctx.limits, ctx.clock()),
    )


@router.get("/agents/{agent_id}", name="agent_page")
def agent_page(
    request: Request,
    ctx: CtxDep,
    db: DbDep,
    session: WebSessionDep,
    user: UserDep,
    agent_id: AgentIdPath,
    span: Annotated[str, Query(alias="range")] = DEFAULT_RANGE,
    queue: Annotated[bool, Query(description="ask the agent for its upload queue")] = False,
) -> Response:
    now = ctx.clock()
    detail = queries.agent_detail(db, agent_id, now, ctx.config.offline_after_s)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    if span not in RANGES:
        span = DEFAULT_RANGE
    agent_alerts = queries.stored_alerts(db, now, agent_id)
    return render(
        request,
        ctx,
        session,
        user,
        "agent.html",
        d=detail,
        alerts=agent_alerts[0],
        resolved_alerts=agent_alerts[1],
        ranges=list(RANGES),
        range=span,
        uploads=queries.uploads(db, agent_id, ["upload_completed"]),
        failures=queries.uploads(db, agent_id, list(queries.FAILURE_KINDS)),
        events=queries.other_events(db, agent_id),
        history=queries.assignment_history(db, agent_id),
        audit=queries.audit(db, target=f"agent:{agent_id}", limit=50),
        queue=queue_panel(ctx.queue, agent_id, user.name) if queue else None,
        queue_configured=ctx.queue is not None,
        budget=budgets.agent_budget(db, ctx.limits, agent_id, detail.row.site, now),
    )


@router.get("/audit", name="audit_page")
def audit_page(request: Request, ctx: CtxDep, db: DbDep, session: WebSessionDep, user: UserDep) -> Response:
    return render(request, ctx, session, user, "audit.html", entries=queries.audit(db, limit=500))


class OverrideForm(BaseModel):
    """The override form; every field is text as the browser sends it (parsed by ``overrides``)."""

    model_config = ConfigDict(extra="ignore")
    action: str = "set"
    paused: str = ""
    windows: str = ""
    max_concurrency: str = ""
    bandwidth_bps: str = ""
    upload_now: str = ""
    monthly_budget: str = ""
    daily_cap: str = ""
    note: str = ""


def _form_override(
    ctx: CtxDep, db: DbDep, user: OperatorDep, form: OverrideForm, back: str, agent_id: str | None, site: str | None
) -> Response:
    if form.action == "clear":
        overrides.clear(db, ctx.counters.overrides, who=user.name, agent_id=agent_id, site=site)
        return RedirectResponse(f"{back}?msg=override-cleared", status_code=status.HTTP_303_SEE_OTHER)
    try:
        change = overrides.change_from_form(form.model_dump())
        overrides.apply_change(db, ctx.counters.overrides, who=user.name, change=change, agent_id=agent_id, site=site)
    except overrides.OverrideError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return RedirectResponse(f"{back}?msg=override-set", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/agents/{agent_id}/override", name="agent_override_form")
def agent_override_form(
    ctx: CtxDep,
    db: DbDep,
    user: OperatorDep,
    _csrf: CsrfDep,
    form: Annotated[OverrideForm, Form()],
    agent_id: AgentIdPath,
) -> Response:
    if queries.agent_detail(db, agent_id, ctx.clock(), ctx.config.offline_after_s) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    return _form_override(ctx, db, user, form, f"/agents/{agent_id}", agent_id, None)


@router.post("/sites/{site}/override", name="site_override_form")
def site_override_form(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, form: Annotated[OverrideForm, Form()], site: SitePath
) -> Response:
    return _form_override(ctx, db, user, form, "/", None, site)


class BudgetForm(BaseModel):
    """The budgets table's form (``overrides.budget_from_form``)."""

    model_config = ConfigDict(extra="ignore")
    monthly_budget: str = ""
    daily_cap: str = ""


@router.post("/sites/{site}/budget", name="site_budget_form")
def site_budget_form(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, form: Annotated[BudgetForm, Form()], site: SitePath
) -> Response:
    """Set, raise or clear (``-``: as configured) a site's data budget; the rest of its override stays."""
    try:
        change = overrides.budget_from_form(form.model_dump())
        overrides.apply_change(db, ctx.counters.overrides, who=user.name, change=change, site=site)
    except overrides.OverrideError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return RedirectResponse("/?msg=override-set#budgets", status_code=status.HTTP_303_SEE_OTHER)
