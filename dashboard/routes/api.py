"""The JSON API under ``/api`` (OpenAPI at ``/docs``): everything the pages show, and overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from dashboard import overrides, queries
from dashboard.deps import CsrfDep, CtxDep, DbDep, OperatorDep, UserDep, WebSessionDep
from dashboard.listing import SortKey, StatusFilter, select_rows
from dashboard.routes.pages import DEFAULT_RANGE, RANGES
from dashboard.schemas import (
    AgentDetailOut,
    AgentOut,
    AlertOut,
    AssignmentOut,
    AuditOut,
    FleetOut,
    OverrideChange,
    OverrideOut,
    TelemetryPointOut,
    TotalsOut,
    UploadOut,
)

router = APIRouter(prefix="/api", tags=["fleet"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/me", tags=["session"])
def me(user: UserDep, ctx: CtxDep, session: WebSessionDep) -> dict[str, str]:
    """Who is logged in, and the CSRF token to send as ``X-CSRF-Token`` with changes."""
    return {"user": user.name, "role": user.role.value, "csrf_token": ctx.auth.csrf_token(session)}


@router.get("/fleet")
def fleet(ctx: CtxDep, db: DbDep, _user: UserDep) -> FleetOut:
    """Totals, alerts and every agent (as on the fleet page)."""
    snap = queries.fleet_snapshot(db, ctx.clock(), ctx.config.offline_after_s, ctx.limits)
    return FleetOut(
        totals=TotalsOut.model_validate(snap.totals),
        alerts=[AlertOut.model_validate(a) for a in snap.alerts],
        agents=[AgentOut.model_validate(r) for r in snap.rows],
        at=snap.at,
    )


@router.get("/agents")
def agents(
    ctx: CtxDep,
    db: DbDep,
    _user: UserDep,
    q: str = "",
    state: Annotated[StatusFilter, Query(alias="status")] = StatusFilter.ALL,
    sort: SortKey = SortKey.AGENT_ID,
    desc: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AgentOut]:
    """Agents, filtered (free text over id, site, model, reason; status) and sorted."""
    rows = queries.fleet_rows(db, ctx.clock(), ctx.config.offline_after_s)
    chosen = select_rows(rows, query=q, status=state, sort=sort, descending=desc, limits=ctx.limits)
    return [AgentOut.model_validate(r) for r in chosen[offset : offset + limit]]


def _detail_or_404(ctx: CtxDep, db: DbDep, agent_id: str) -> AgentDetailOut:
    detail = queries.agent_detail(db, agent_id, ctx.clock(), ctx.config.offline_after_s)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    return AgentDetailOut.model_validate(detail)


@router.get("/agents/{agent_id}")
def agent(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str) -> AgentDetailOut:
    return _detail_or_404(ctx, db, agent_id)


@router.get("/agents/{agent_id}/telemetry")
def telemetry(
    ctx: CtxDep,
    db: DbDep,
    _user: UserDep,
    agent_id: str,
    span: Annotated[str, Query(alias="range", description=f"one of {', '.join(RANGES)}")] = DEFAULT_RANGE,
    points: Annotated[int, Query(ge=10, le=5000)] = 600,
) -> list[TelemetryPointOut]:
    """Time series for the charts, oldest first, thinned to at most ``points``."""
    if span not in RANGES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"range must be one of {', '.join(RANGES)}")
    _detail_or_404(ctx, db, agent_id)
    since = ctx.clock() - RANGES[span]
    return [TelemetryPointOut.model_validate(p) for p in queries.telemetry(db, agent_id, since, points)]


@router.get("/agents/{agent_id}/uploads")
def uploads(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[UploadOut]:
    """Completed uploads, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return [UploadOut.model_validate(u) for u in queries.uploads(db, agent_id, ["upload_completed"], limit)]


@router.get("/agents/{agent_id}/failures")
def failures(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[UploadOut]:
    """Failed uploads and rejected files with their reasons, newest first."""
    _detail_or_404(ctx, db, agent_id)
    rows = queries.uploads(db, agent_id, list(queries.FAILURE_KINDS), limit)
    return [UploadOut.model_validate(u) for u in rows]


@router.get("/agents/{agent_id}/assignments")
def assignments(ctx: CtxDep, db: DbDep, _user: UserDep, agent_id: str, limit: Limit = 50) -> list[AssignmentOut]:
    """Assignment history, newest first."""
    _detail_or_404(ctx, db, agent_id)
    return [AssignmentOut.model_validate(a) for a in queries.assignment_history(db, agent_id, limit)]


@router.get("/overrides", tags=["overrides"])
def list_overrides(db: DbDep, _user: UserDep) -> list[OverrideOut]:
    return [OverrideOut.model_validate(o) for o in queries.overrides_for(db)]


@router.get("/audit", tags=["overrides"])
def audit(db: DbDep, _user: UserDep, target: str | None = None, limit: Limit = 200) -> list[AuditOut]:
    """Operator changes, newest first; ``target`` like ``agent:pi-01`` or ``site:garden``."""
    return [AuditOut.model_validate(a) for a in queries.audit(db, target=target, limit=limit)]


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
