"""``/metrics`` for Prometheus (no login: it is meant to be scraped; see docs/dashboard.md)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dashboard.deps import CtxDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(ctx: CtxDep) -> Response:
    """Prometheus text format: fleet and per-agent gauges and counters, read from the database
    (at most ``metrics_cache_s`` old)."""
    return ctx.metrics_page.response()
