"""The JSON API under ``/api`` (OpenAPI at ``/docs``): everything the pages show, and overrides."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

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
from dashboard.listing import view_page
from dashboard.overrides import OverrideChange, SiteOverrideChange
from dashboard.readmodel import (
    AgentDetail,
    AgentRow,
    AssignmentView,
    AuditRow,
    FleetSnapshot,
    OverrideView,
    TelemetryPoint,
    UploadRow,
)
from dashboard.routes.errors import errors
from dashboard.routes.pages import DEFAULT_RANGE, RANGES

router = APIRouter(prefix="/api", tags=["fleet"], responses=errors(401, 503))
Limit = Annotated[int, Query(ge=1, le=1000)]
RangeKey = Annotated[
    str,
    Query(alias="range", pattern=f"^({'|'.join(map(re.escape, RANGES))})$", description=f"one of {', '.join(RANGES)}"),
]
AuditTarget = Annotated[
    str | None,
    Query(max_length=140, pattern=r"^[^\x00-\x1f\x7f]*$", description="like `agent:pi-01` or `site:garden`"),
]
OF_AGENT = errors(404)  # every route under /agents/{agent_id}
CHANGE = errors(400, 403)  # every route that changes something


@router.get("/me", tags=["session"])
def me(user: UserDep, ctx: CtxDep, session: WebSessionDep) -> dict[str, str]:
    """Who is logged in, and the CSRF token to send as ``X-CSRF-Token`` with changes."""
    return {"user": user.name, "role": user.role.value, "csrf_token": ctx.auth.csrf_token(session)}


@router.get("/fleet", response_model=FleetSnapshot)
def fleet(ctx: CtxDep, _user: UserDep) -> Response:
    """Totals, alerts and every agent (``rows``), as on the fleet page."""
    # the shared snapshot's JSON, made once per snapshot (in the background read): not validated and serialized
    # again per request, which at 10,000 agents costs a few hundred ms (docs/bench/scale.md)
    return Response(ctx.snapshots.json(), media_type="application/json")


@router.get("/agents")
def agents(ctx: CtxDep, _user: UserDep, view: FleetViewDep) -> list[AgentRow]:
    """Agents, filtered (free text over id, site, model, reason; status), sorted and paged."""
    return view_page(ctx.snapshots.get().rows, view, ctx.limits).rows


def _detail_or_404(ctx: CtxDep, db: DbDep, agent_id: str) -> AgentDetail:
    detail = queries.agent_detail(db, agent_id, ctx.clock(), ctx.config.offline_after_s)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    return detail


@router.get("/agents/{agent_id}", responses=OF_AGENT)
def agent(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath) -> AgentDetail:
    return _detail_or_404(ctx, db, agent_id)


@router.get("/agents/{agent_id}/budget", responses=OF_AGENT)
def agent_budget(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath) -> budgets.AgentBudgetView | None:
    """What the agent sent this budget month and today against its site's budget and its daily cap; ``null``
    when its site is not metered."""
    detail = _detail_or_404(ctx, db, agent_id)
    return budgets.agent_budget(db, ctx.limits, agent_id, detail.row.site, ctx.clock())


@router.get("/sites/budgets")
def site_budgets(ctx: CtxDep, db: DbDep, _user: UserDep) -> list[budgets.SiteBudgetView]:
    """Every site with a monthly data budget: bytes used (measured + overhead) against it, today's allowance."""
    return budgets.site_budgets(db, ctx.limits, ctx.clock())


@router.get("/agents/{agent_id}/telemetry", responses=OF_AGENT)
def telemetry(
    ctx: CtxDep,
    db: DbDep,
    _user: UserDep,
    agent_id: AgentIdPath,
    span: RangeKey = DEFAULT_RANGE,
    points: Annotated[int, Query(ge=10, le=5000)] = 600,
) -> list[TelemetryPoint]:
    """Time series for the charts, oldest first, thinned to at most ``points``."""
    _detail_or_404(ctx, db, agent_id)
    since = ctx.clock() - RANGES[span]
    return queries.telemetry(db, agent_id, since, points)


@router.get("/agents/{agent_id}/uploads", responses=OF_AGENT)
def uploads(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath, limit: Limit = 50) -> list[UploadRow]:
    """Completed uploads, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.uploads(db, agent_id, ["upload_completed"], limit)


@router.get("/agents/{agent_id}/failures", responses=OF_AGENT)
def failures(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath, limit: Limit = 50) -> list[UploadRow]:
    """Failed uploads and rejected files with their reasons, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.uploads(db, agent_id, list(queries.FAILURE_KINDS), limit)


@router.get("/agents/{agent_id}/events", responses=OF_AGENT)
def events(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath, limit: Limit = 50) -> list[UploadRow]:
    """The agent's other events (disk low, and kinds a newer agent sent that this release does not know:
    ``kind`` as it came), newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.other_events(db, agent_id, limit)


@router.get("/agents/{agent_id}/assignments", responses=OF_AGENT)
def assignments(
    ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: AgentIdPath, limit: Limit = 50
) -> list[AssignmentView]:
    """Assignment history, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.assignment_history(db, agent_id, limit)


@router.get("/overrides", tags=["overrides"])
def list_overrides(db: DbDep, _user: UserDep) -> list[OverrideView]:
    return queries.overrides_for(db)


@router.get("/audit", tags=["overrides"])
def audit(db: DbDep, _user: UserDep, target: AuditTarget = None, limit: Limit = 200) -> list[AuditRow]:
    """Operator changes, newest first; ``target`` like ``agent:pi-01`` or ``site:garden``."""
    return queries.audit(db, target=target, limit=limit)


def _apply(ctx: CtxDep, db: DbDep, who: str, change: OverrideChange, agent_id: str | None, site: str | None) -> None:
    try:
        overrides.apply_change(db, ctx.counters.overrides, who=who, change=change, agent_id=agent_id, site=site)
    except overrides.OverrideError as exc:  # answered like any other invalid body (FastAPI's 422 shape)
        error = {"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}
        raise RequestValidationError([error]) from exc


@router.post(
    "/agents/{agent_id}/override",
    tags=["overrides"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=OF_AGENT | CHANGE,
)
def set_agent_override(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, agent_id: AgentIdPath, change: OverrideChange
) -> Response:
    """Change an agent's override (fields left out stay); the controller applies it on its next tick."""
    _detail_or_404(ctx, db, agent_id)
    _apply(ctx, db, user.name, change, agent_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/agents/{agent_id}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT, responses=errors(403)
)
def clear_agent_override(ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, agent_id: AgentIdPath) -> Response:
    overrides.clear(db, ctx.counters.overrides, who=user.name, agent_id=agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sites/{site}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT, responses=CHANGE)
def set_site_override(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, site: SitePath, change: SiteOverrideChange
) -> Response:
    """Change a whole site's override (every agent whose birth names that site)."""
    _apply(ctx, db, user.name, change, None, site)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/sites/{site}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT, responses=errors(403)
)
def clear_site_override(ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, site: SitePath) -> Response:
    overrides.clear(db, ctx.counters.overrides, who=user.name, site=site)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
