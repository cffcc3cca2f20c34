"""The engine's ``Limits`` from the controller's assignment or from the configured ``[defaults]``."""

from __future__ import annotations

from edge_agent.engine import Limits
from edge_agent.service.config import DefaultsSection
from fleet_protocol import Assignment


def limits_from_defaults(defaults: DefaultsSection) -> Limits:
    return Limits(
        concurrency=defaults.concurrency,
        part_size=defaults.part_size,
        windows=tuple(defaults.windows),
        bandwidth_bps=defaults.bandwidth_bps,
        compression_level=defaults.compression_level,
        paused=defaults.paused,
    )


def limits_from_assignment(assignment: Assignment) -> Limits:
    """Field for field; ``concurrency = 0`` means "no new parts" to the engine, like ``paused``."""
    return Limits(
        concurrency=assignment.concurrency,
        part_size=assignment.part_size,
        windows=tuple(assignment.windows),
        bandwidth_bps=assignment.bandwidth_bps,
        compression_level=assignment.compression_level,
        paused=assignment.paused,
        upload_now=assignment.upload_now,
    )
