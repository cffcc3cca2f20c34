"""``/api/stream``: Server-Sent Events with live fleet changes, alerts and one agent's latest values.

Events (JSON ``data``):
``fleet``  ``{"totals_html", "alerts_html", "alerts": [...], "count", "at"}``, and with ``?rows=true`` (the
           fleet page, which passes its filter, order and page too) ``"order"``: the agent ids on that page,
           top to bottom, ``"matching"``: how many agents pass its filter, and ``"rows"``:
           ``{agent_id: row html}`` for the rows of the page that changed since the last event on this
           connection (all of them in the first one).
``agent``  ``{"agent": <AgentRow>, "facts_html"}`` for ``?agent=ID`` whenever that agent's row changed, and
           ``"history_html"`` (the assignment history table) in the first one and whenever its assignment
           version changed.

The stream ends when its session does (logout, expiry): an open connection is no way around a logout.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import TypeAdapter
from sqlmodel import Session

from dashboard import queries
from dashboard.context import AppContext
from dashboard.deps import CtxDep, FleetViewDep, UserDep, WebSessionDep
from dashboard.formatting import iso
from dashboard.listing import view_page
from dashboard.live import fleet_delta
from dashboard.readmodel import AgentRow, Alert, AssignmentView, FleetSnapshot
from dashboard.rendering import render_fragment

router = APIRouter(prefix="/api", tags=["live"])
RETRY_MS = 3000
_ROW = TypeAdapter(AgentRow)
_ALERTS = TypeAdapter(list[Alert])


def _version(row: AgentRow | None) -> int | None:
    return row.assignment.version if row is not None and row.assignment is not None else None


async def _history_html(ctx: AppContext, agent_id: str) -> str:
    def read() -> list[AssignmentView]:
        with Session(ctx.engine) as db:
            return queries.assignment_history(db, agent_id)

    return render_fragment(ctx, "assignment_history", await anyio.to_thread.run_sync(read))


def _fleet_event(ctx: AppContext, snap: FleetSnapshot) -> dict[str, Any]:
    return {
        "totals_html": render_fragment(ctx, "totals_cards", snap.totals),
        "alerts_html": render_fragment(ctx, "alert_list", snap.alerts, snap.resolved),
        "alerts": _ALERTS.dump_python(snap.alerts, mode="json"),
        "count": len(snap.rows),
        "at": iso(snap.at),
    }


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    ctx: CtxDep,
    session: WebSessionDep,
    _user: UserDep,
    view: FleetViewDep,
    rows: bool = False,
    agent: str | None = None,
) -> AsyncIterable[ServerSentEvent]:
    """Live updates as Server-Sent Events (see the module text for the events)."""
    sent: dict[str, AgentRow] | None = None
    last: tuple[object, ...] | None = None
    last_agent: AgentRow | None = None
    yield ServerSentEvent(comment="connected", retry=RETRY_MS)
    async for snap in ctx.hub.snapshots():
        if not ctx.auth.is_live(session):
            return
        page = view_page(snap.rows, view, ctx.limits) if rows else None
        shown = page.rows if page else []
        delta = fleet_delta(sent, shown)
        sent = {r.agent_id: r for r in shown}
        key = (snap.totals, tuple(snap.alerts), tuple(snap.resolved), tuple(sent), page.matching if page else 0)
        if delta.changed or key != last:
            last = key
            event = _fleet_event(ctx, snap)
            if page is not None:
                event["order"], event["matching"] = list(sent), page.matching
                event["rows"] = {
                    r.agent_id: render_fragment(ctx, "fleet_row", r, snap.at, ctx.limits) for r in delta.changed
                }
            yield ServerSentEvent(event="fleet", data=event)
        if agent is not None:
            mine = next((r for r in snap.rows if r.agent_id == agent), None)
            if mine is not None and mine != last_agent:
                data = {
                    "agent": _ROW.dump_python(mine, mode="json"),
                    "facts_html": render_fragment(ctx, "agent_facts", mine, snap.at),
                }
                if last_agent is None or _version(mine) != _version(last_agent):
                    data["history_html"] = await _history_html(ctx, agent)
                last_agent = mine
                yield ServerSentEvent(event="agent", data=data)
