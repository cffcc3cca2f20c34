"""The engine's ``Limits`` from the controller's assignment or from the configured ``[defaults]``.

Any assignment the protocol accepts becomes valid ``Limits`` (its bounds are inside the engine's). One more
guard, because the parts in flight are held in memory: with the agent's RAM known, concurrency × part size is
kept within ``MEMORY_SHARE`` of it (fewer parts in flight first, at least one; then smaller parts, at least
5 MiB). The controller's own sizing stays far below that; the guard only binds for an assignment no sane
controller sends (64 parts of 5 GiB), which would otherwise end the agent in the out-of-memory killer.
"""

from __future__ import annotations

import logging

from edge_agent.engine import Limits
from edge_agent.service.config import DefaultsSection
from fleet_protocol.messages import MIN_PART_SIZE, Assignment

log = logging.getLogger(__name__)

#: the share of the agent's RAM that part buffers may take at most, whatever the assignment says
MEMORY_SHARE = 0.5


def limits_from_defaults(defaults: DefaultsSection) -> Limits:
    return Limits(
        concurrency=defaults.concurrency,
        part_size=defaults.part_size,
        windows=tuple(defaults.windows),
        bandwidth_bps=defaults.bandwidth_bps,
        compression_level=defaults.compression_level,
        paused=defaults.paused,
    )


def within_memory(concurrency: int, part_size: int, ram_bytes: int) -> tuple[int, int]:
    """(concurrency, part size) whose product fits ``MEMORY_SHARE`` of ``ram_bytes`` (0 = unknown: unchanged)."""
    budget = int(ram_bytes * MEMORY_SHARE)
    if budget <= 0 or concurrency * part_size <= budget:
        return concurrency, part_size
    concurrency = max(1, budget // part_size)  # (concurrency 0 holds nothing: it never gets here)
    return concurrency, max(MIN_PART_SIZE, min(part_size, budget))


def limits_from_assignment(assignment: Assignment, ram_bytes: int = 0) -> Limits:
    """Field for field (``concurrency = 0`` means "no new parts" to the engine, like ``paused``), within the
    memory guard when ``ram_bytes`` is known."""
    concurrency, part_size = within_memory(assignment.concurrency, assignment.part_size, ram_bytes)
    if (concurrency, part_size) != (assignment.concurrency, assignment.part_size):
        log.warning(
            "assignment v%d asks for %d parts of %d bytes in flight: more than %.0f%% of %d bytes of RAM; "
            "using %d parts of %d bytes",
            assignment.version,
            assignment.concurrency,
            assignment.part_size,
            MEMORY_SHARE * 100,
            ram_bytes,
            concurrency,
            part_size,
        )
    return Limits(
        concurrency=concurrency,
        part_size=part_size,
        windows=tuple(assignment.windows),
        bandwidth_bps=assignment.bandwidth_bps,
        compression_level=assignment.compression_level,
        paused=assignment.paused,
        upload_now=assignment.upload_now,
    )
