"""Stored rows → the policy's view of the fleet (``FleetView``); a plain conversion, no I/O."""

from __future__ import annotations

from controller.policy import AgentView, FleetView, OverrideView, PolicyState, TelemetryView
from controller.store.assignments import FleetRows, PolicyAgentRow, settings_of, state_of
from controller.store.database import as_utc
from controller.store.models import OperatorOverride


def _telemetry(agent: PolicyAgentRow) -> TelemetryView | None:
    at = as_utc(agent.telemetry_at)
    if at is None:
        return None
    return TelemetryView(
        at=at,
        temperature_c=agent.temperature_c,
        throttled=agent.throttled,
        cpu_percent=agent.cpu_percent,
        backlog_files=agent.backlog_files,
        backlog_bytes=agent.backlog_bytes,
        backlog_oldest_age_s=agent.backlog_oldest_age_s,
        active_uploads=agent.active_uploads,
        throughput_bps=agent.throughput_bps,
        errors_total=agent.errors_total,
    )


def _override(row: OperatorOverride) -> OverrideView:
    return OverrideView(
        who=row.updated_by,
        paused=row.paused,
        windows=None if row.windows is None else tuple(row.windows),
        concurrency_cap=row.concurrency_cap,
        bandwidth_cap_bps=row.bandwidth_cap_bps,
        upload_now=row.upload_now,
        monthly_budget_bytes=row.monthly_budget_bytes,
        daily_cap_bytes=row.daily_cap_bytes,
    )


def build_fleet_view(rows: FleetRows, transcoders: int = 0) -> FleetView:
    """``transcoders``: the central transcoder workers alive (the policy may send a hot Pi's files raw)."""
    views = []
    for agent in rows.agents:
        current = rows.current.get(agent.id)
        views.append(
            AgentView(
                agent_id=agent.id,
                site=agent.site,
                online=agent.online,
                cores=agent.cores,
                ram_bytes=agent.ram_bytes,
                memory_limit_bytes=agent.memory_limit_bytes,
                baseline_rss_bytes=agent.baseline_rss_bytes,
                encode_bps_by_level=tuple(agent.encode_bps_by_level or ()),
                compression_ratio_by_level=tuple(agent.compression_ratio_by_level or ()),
                encode_cores=agent.encode_cores,
                telemetry=_telemetry(agent),
                state=state_of(current) if current else PolicyState(),
                previous=settings_of(current) if current else None,
                transcoder_capacity=transcoders,
            )
        )
    return FleetView(
        agents=tuple(views),
        agent_overrides={o.target: _override(o) for o in rows.overrides if o.scope == "agent"},
        site_overrides={o.target: _override(o) for o in rows.overrides if o.scope == "site"},
    )
