"""The real transfer engine behind the service's ``EnginePort``: limits, stats and events translated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from edge_agent.engine import EngineEvent, EngineStats, Limits
from edge_agent.service.config import AgentConfig
from edge_agent.service.limits import UploadLimits
from edge_agent.service.ports import EngineSnapshot, UploadEvent
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.engine import Engine
from fleet_protocol import EventKind


def to_engine_limits(limits: UploadLimits) -> Limits:
    return Limits(**asdict(limits))


def to_snapshot(stats: EngineStats) -> EngineSnapshot:
    return EngineSnapshot(
        backlog_files=stats.backlog_files,
        backlog_bytes=stats.backlog_bytes,
        backlog_oldest_age_s=stats.oldest_age_s,
        active_uploads=stats.active_uploads,
        throughput_bps=stats.throughput_bps,
        bytes_uploaded_total=stats.bytes_uploaded_total,
        retries_total=stats.retries_total,
        errors_total=stats.errors_total,
    )


def to_upload_event(event: EngineEvent) -> UploadEvent:
    """The engine sends ``UPLOAD_COMPLETED`` only after the object was completed AND verified."""
    return UploadEvent(
        kind=event.kind,
        path=Path(event.file),
        key=event.key,
        original_bytes=event.original_bytes,
        stored_bytes=event.stored_bytes,
        original_sha256=event.original_sha256,
        stored_as=event.stored_as,
        duration_s=event.duration_s,
        retries=event.retries,
        reason=event.reason,
        verified=event.kind == EventKind.UPLOAD_COMPLETED,
    )


class EngineAdapter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, path: Path) -> bool:
        return bool(self.engine.enqueue(path))

    def set_limits(self, limits: UploadLimits) -> None:
        self.engine.set_limits(to_engine_limits(limits))

    def stats(self) -> EngineSnapshot:
        return to_snapshot(self.engine.stats())

    def start(self) -> None:
        self.engine.start()

    def stop(self, timeout: float) -> None:
        self.engine.stop(timeout)
        self.engine.close()  # the journal; parts still in flight after the timeout resume at the next start


def build_engine(config: AgentConfig, limits: UploadLimits, on_event: Callable[[UploadEvent], None]) -> EngineAdapter:
    from edge_agent.transfer.engine import Engine

    engine_config = EngineConfig(
        s3=config.s3.settings(),
        prefix=config.s3.prefix,
        agent_id=config.agent_id,
        state_dir=config.state_dir,
    )
    engine = Engine(engine_config, to_engine_limits(limits), on_event=lambda ev: on_event(to_upload_event(ev)))
    return EngineAdapter(engine)
