"""The engine's ``Limits`` from the controller's assignment or from the configured ``[defaults]``.

``Limits`` are the assignment's settings (``Assignment.settings``), so any assignment the protocol accepts is
valid ``Limits``. One more guard, because the parts in flight are held in memory: with the agent's RAM known,
concurrency × part size is kept within ``MEMORY_SHARE`` of it (fewer parts in flight first, at least one; then
smaller parts, never below S3's minimum). The controller's own sizing stays far below that; the guard only binds
for an assignment no sane controller sends (64 parts of 5 GiB), which would otherwise end the agent in the
out-of-memory killer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from edge_agent.engine import Limits
from edge_agent.service.config import DefaultsSection
from fleet_protocol.assignment import PART_SIZE
from fleet_protocol.messages import Assignment

log = logging.getLogger(__name__)

#: the share of the agent's RAM that part buffers may take at most, whatever the assignment says
MEMORY_SHARE = 0.5


def limits_from_defaults(defaults: DefaultsSection) -> Limits:
    return defaults.settings


def within_memory(concurrency: int, part_size: int, ram_bytes: int) -> tuple[int, int]:
    """(concurrency, part size) whose product fits ``MEMORY_SHARE`` of ``ram_bytes`` (0 = unknown: unchanged)."""
    budget = int(ram_bytes * MEMORY_SHARE)
    if budget <= 0 or concurrency * part_size <= budget:
        return concurrency, part_size
    concurrency = max(1, budget // part_size)  # (concurrency 0 holds nothing: it never gets here)
    return concurrency, PART_SIZE.fit(min(part_size, budget))


def limits_from_assignment(assignment: Assignment, ram_bytes: int = 0) -> Limits:
    """The assignment's settings (``concurrency = 0`` means "no new parts" to the engine, like ``paused``),
    within the memory guard when ``ram_bytes`` is known."""
    settings = assignment.settings
    concurrency, part_size = within_memory(settings.concurrency, settings.part_size, ram_bytes)
    if (concurrency, part_size) == (settings.concurrency, settings.part_size):
        return settings
    log.warning(
        "assignment v%d asks for %d parts of %d bytes in flight: more than %.0f%% of %d bytes of RAM; "
        "using %d parts of %d bytes",
        assignment.version,
        settings.concurrency,
        settings.part_size,
        MEMORY_SHARE * 100,
        ram_bytes,
        concurrency,
        part_size,
    )
    return replace(settings, concurrency=concurrency, part_size=part_size)
