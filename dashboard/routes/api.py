"""The JSON API under ``/api`` (OpenAPI at ``/docs``): everything the pages show, and overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from dashboard import overrides, queries
from dashboard.deps import CsrfDep, CtxDep, DbDep, FleetViewDep, OperatorDep, UserDep, WebSessionDep
from dashboard.listing import view_page
from dashboard.overrides import OverrideChange
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
from dashboard.routes.pages import DEFAULT_RANGE, RANGES

router = APIRouter(prefix="/api", tags=["fleet"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/me", tags=["session"])
def me(user: UserDep, ctx: CtxDep, session: WebSessionDep) -> dict[str, str]:
    """Who is logged in, and the CSRF token to send as ``X-CSRF-Token`` with changes."""
    return {"user": user.name, "role": user.role.value, "csrf_token": ctx.auth.csrf_token(session)}


@router.get("/fleet")
def fleet(ctx: CtxDep, _user: UserDep) -> FleetSnapshot:
    """Totals, alerts and every agent (``rows``), as on the fleet page."""
    return ctx.snapshots.get()


@router.get("/agents")
def agents(ctx: CtxDep, _user: UserDep, view: FleetViewDep) -> list[AgentRow]:
    """Agents, filtered (free text over id, site, model, reason; status), sorted and paged."""
    return view_page(ctx.snapshots.get().rows, view, ctx.limits).rows


def _detail_or_404(ctx: CtxDep, db: DbDep, agent_id: str) -> AgentDetail:
    detail = queries.agent_detail(db, agent_id, ctx.clock(), ctx.config.offline_after_s)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    return detail


@router.get("/agents/{agent_id}")
def agent(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str) -> AgentDetail:
    return _detail_or_404(ctx, db, agent_id)


@router.get("/agents/{agent_id}/telemetry")
def telemetry(
    ctx: CtxDep,
    db: DbDep,
    _user: UserDep,
    agent_id: str,
    span: Annotated[str, Query(alias="range", description=f"one of {', '.join(RANGES)}")] = DEFAULT_RANGE,
    points: Annotated[int, Query(ge=10, le=5000)] = 600,
) -> list[TelemetryPoint]:
    """Time series for the charts, oldest first, thinned to at most ``points``."""
    if span not in RANGES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"range must be one of {', '.join(RANGES)}")
    _detail_or_404(ctx, db, agent_id)
    since = ctx.clock() - RANGES[span]
    return queries.telemetry(db, agent_id, since, points)


@router.get("/agents/{agent_id}/uploads")
def uploads(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[UploadRow]:
    """Completed uploads, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.uploads(db, agent_id, ["upload_completed"], limit)


@router.get("/agents/{agent_id}/failures")
def failures(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[UploadRow]:
    """Failed uploads and rejected files with their reasons, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.uploads(db, agent_id, list(queries.FAILURE_KINDS), limit)


@router.get("/agents/{agent_id}/assignments")
def assignments(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[AssignmentView]:
    """Assignment history, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return queries.assignment_history(db, agent_id, limit)


@router.get("/overrides", tags=["overrides"])
def list_overrides(db: DbDep, _user: UserDep) -> list[OverrideView]:
    return queries.overrides_for(db)


@router.get("/audit", tags=["overrides"])
def audit(db: DbDep, _user: UserDep, target: str | None = None, limit: Limit = 200) -> list[AuditRow]:
    """Operator changes, newest first; ``target`` like ``agent:pi-01`` or ``site:garden``."""
    return queries.audit(db, target=target, limit=limit)


def _apply(ctx: CtxDep, db: DbDep, who: str, change: OverrideChange, agent_id: str | None, site: str | None) -> None:
    try:
        overrides.apply_change(db, who=who, change=change, agent_id=agent_id, site=site)
    except overrides.OverrideError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    ctx.counters.overrides.labels("set").inc()


@router.post("/agents/{agent_id}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT)
def set_agent_override(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, agent_id: str, change: OverrideChange
) -> Response:
    """Change an agent's override (fields left out stay); the controller applies it on its next tick."""
    _detail_or_404(ctx, db, agent_id)
    _apply(ctx, db, user.name, change, agent_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/agents/{agent_id}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT)
def clear_agent_override(ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, agent_id: str) -> Response:
    overrides.clear(db, who=user.name, agent_id=agent_id)
    ctx.counters.overrides.labels("clear").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sites/{site}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT)
def set_site_override(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, site: str, change: OverrideChange
) -> Response:
    """Change a whole site's override (every agent whose birth names that site)."""
    _apply(ctx, db, user.name, change, None, site)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/sites/{site}/override", tags=["overrides"], status_code=status.HTTP_204_NO_CONTENT)
def clear_site_override(ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, site: str) -> Response:
    overrides.clear(db, who=user.name, site=site)
    ctx.counters.overrides.labels("clear").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
