"""``/api/stream``: Server-Sent Events with live fleet changes, alerts and one agent's latest values.

Events (JSON ``data``):
``fleet``  ``{"totals_html", "alerts_html", "alerts": [...], "rows": {agent_id: row html}, "removed": [ids],
           "count", "at"}`` – ``rows`` only when asked for (``?rows=true``, the fleet page) and only the rows that
           changed since the last event on this connection (all of them in the first one).
``agent``  ``{"agent": <AgentRow>, "facts_html"}`` for ``?agent=ID`` whenever that agent's row changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from dashboard.deps import CtxDep, UserDep
from dashboard.formatting import iso
from dashboard.live import fleet_delta
from dashboard.readmodel import AgentRow, FleetSnapshot
from dashboard.rendering import render_fragment

router = APIRouter(prefix="/api", tags=["live"])
RETRY_MS = 3000


def _fleet_event(
    ctx: CtxDep, snap: FleetSnapshot, changed: list[AgentRow], removed: list[str], with_rows: bool
) -> dict[str, Any]:
    return {
        "totals_html": render_fragment(ctx, "totals_cards", snap.totals),
        "alerts_html": render_fragment(ctx, "alert_list", snap.alerts),
        "alerts": [a.model_dump(mode="json") for a in snap.alerts],
        "rows": {r.agent_id: render_fragment(ctx, "fleet_row", r, snap.at, ctx.limits) for r in changed}
        if with_rows
        else {},
        "removed": removed if with_rows else [],
        "count": len(snap.rows),
        "at": iso(snap.at),
    }


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    ctx: CtxDep, _user: UserDep, rows: bool = False, agent: str | None = None
) -> AsyncIterable[ServerSentEvent]:
    """Live updates as Server-Sent Events (see the module text for the events)."""
    sent: dict[str, AgentRow] | None = None
    last_fleet: tuple[object, ...] | None = None
    yield ServerSentEvent(comment="connected", retry=RETRY_MS)
    async for snap in ctx.hub.snapshots():
        delta = fleet_delta(sent, snap.rows)
        sent = {r.agent_id: r for r in snap.rows}
        fleet_key = (snap.totals, tuple(snap.alerts))
        if delta.changed or delta.removed or fleet_key != last_fleet:
            last_fleet = fleet_key
            yield ServerSentEvent(event="fleet", data=_fleet_event(ctx, snap, delta.changed, delta.removed, rows))
        if agent is not None:
            mine = next((r for r in delta.changed if r.agent_id == agent), None)
            if mine is not None:
                yield ServerSentEvent(
                    event="agent",
                    data={
                        "agent": mine.model_dump(mode="json"),
                        "facts_html": render_fragment(ctx, "agent_facts", mine, snap.at),
                    },
                )
