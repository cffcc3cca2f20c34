"""Response and request bodies of the JSON API (``/api``), for validation and the OpenAPI document.

Built from the read model with ``from_attributes`` so there is one source for each value.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from dashboard.overrides import OverrideChange

__all__ = [
    "AgentDetailOut",
    "AgentOut",
    "AlertOut",
    "AssignmentOut",
    "AuditOut",
    "FleetOut",
    "OverrideChange",
    "OverrideOut",
    "TelemetryPointOut",
    "TotalsOut",
    "UploadOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AssignmentOut(_Out):
    version: int
    concurrency: int
    part_size: int
    windows: list[str]
    bandwidth_bps: int
    compression_level: int
    paused: bool
    upload_now: bool
    reason: str
    at: datetime | None


class AgentOut(_Out):
    agent_id: str
    site: str
    model: str
    online: bool
    status_since: datetime | None
    last_seen: datetime | None
    temperature_c: float | None
    throttled: int
    throttle_flags: list[str]
    backlog_files: int
    backlog_bytes: int
    backlog_oldest_age_s: float
    throughput_bps: float
    active_uploads: int
    errors_total: int
    retries_total: int
    bytes_uploaded_total: int
    assignment: AssignmentOut | None
    overridden: bool


class OverrideOut(_Out):
    scope: str
    target: str
    paused: bool | None
    windows: list[str] | None
    max_concurrency: int | None
    bandwidth_bps: int | None
    upload_now: bool
    by: str
    at: datetime | None


class AgentDetailOut(_Out):
    row: AgentOut
    cores: int
    ram_bytes: int
    software_version: str
    flac_encode_bps: float
    simulated: bool
    overrides: list[OverrideOut]


class AlertOut(_Out):
    agent_id: str
    kind: str
    message: str
    since: datetime | None


class TotalsOut(_Out):
    agents: int
    online: int
    hot: int
    alerts: int
    throughput_bps: float
    backlog_files: int
    backlog_bytes: int
    uploaded_today_files: int
    uploaded_today_bytes: int
    saved_today_bytes: int
    failures_today: int
    rejected_today: int


class FleetOut(_Out):
    totals: TotalsOut
    alerts: list[AlertOut]
    agents: list[AgentOut]
    at: datetime


class TelemetryPointOut(_Out):
    at: datetime
    temperature_c: float | None
    throughput_bps: float
    backlog_files: int
    backlog_bytes: int
    active_uploads: int
    concurrency: int | None


class UploadOut(_Out):
    at: datetime
    kind: str
    file: str
    key: str
    original_bytes: int
    stored_bytes: int
    stored_as: str
    duration_s: float
    retries: int
    reason: str
    ratio: float | None


class AuditOut(_Out):
    at: datetime
    user: str
    action: str
    target: str
    details: str
