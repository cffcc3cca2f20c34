"""What the agent's engine is allowed to do, from the controller's assignment or the configured defaults.

``UploadLimits`` mirrors the engine's ``Limits`` (ENGINE_API.md §2) field for field, so the service core
never imports the engine; the composition root turns it into ``edge_agent.engine.Limits``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.service.config import DefaultsSection
from fleet_protocol import Assignment


@dataclass(frozen=True)
class UploadLimits:
    concurrency: int = 2
    part_size: int = 8 * 1024 * 1024
    windows: tuple[str, ...] = ()
    bandwidth_bps: int = 0
    compression_level: int = 5
    paused: bool = False
    upload_now: bool = False


def limits_from_defaults(defaults: DefaultsSection) -> UploadLimits:
    return UploadLimits(
        concurrency=defaults.concurrency,
        part_size=defaults.part_size,
        windows=tuple(defaults.windows),
        bandwidth_bps=defaults.bandwidth_bps,
        compression_level=defaults.compression_level,
        paused=defaults.paused,
    )


def limits_from_assignment(assignment: Assignment) -> UploadLimits:
    """Concurrency 0 means "no parts at all": the engine wants >= 1, so it becomes paused."""
    return UploadLimits(
        concurrency=max(1, assignment.concurrency),
        part_size=assignment.part_size,
        windows=tuple(assignment.windows),
        bandwidth_bps=assignment.bandwidth_bps,
        compression_level=assignment.compression_level,
        paused=assignment.paused or assignment.concurrency == 0,
        upload_now=assignment.upload_now,
    )
