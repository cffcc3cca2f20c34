"""The engine's ``Limits`` from the controller's assignment or from the configured ``[defaults]``.

``Limits`` are the assignment's settings (``Assignment.settings``), so any assignment the protocol accepts is
valid ``Limits``. One more guard, because the parts in flight are held in memory: before the engine gets them,
the agent fits them into its own memory limit with the controller's own function (``fleet_plan.memory.fit``:
concurrency × part size + baseline RSS ≤ 80 % of the limit; smaller parts first, down to 5 MiB, then fewer
parts; none when not even one fits). The controller already sends settings that fit, when the agent reports its
limit; the guard binds for a controller that does not know it (an older one) or an assignment no sane
controller sends (64 parts of 5 GiB), which would otherwise end the agent in the out-of-memory killer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from edge_agent.engine import Limits
from edge_agent.service.config import DefaultsSection
from fleet_plan import memory
from fleet_protocol.messages import Assignment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryBox:
    """What the agent knows of its memory: its limit (cgroup, else RAM; 0 = unknown) and its baseline RSS."""

    limit_bytes: int = 0
    baseline_bytes: int = 0


def limits_from_defaults(defaults: DefaultsSection) -> Limits:
    return defaults.settings


def within_memory(limits: Limits, box: MemoryBox, what: str) -> Limits:
    """``limits`` fitted into ``box`` (``fleet_plan.memory.fit``); a change is logged, naming ``what``."""
    plan = memory.fit(limits.concurrency, limits.part_size, box.limit_bytes, box.baseline_bytes)
    if (plan.concurrency, plan.part_size) == (limits.concurrency, limits.part_size):
        return limits
    log.warning(
        "%s asks for %d parts of %d bytes in flight; %s: using %d parts of %d bytes",
        what,
        limits.concurrency,
        limits.part_size,
        plan.why,
        plan.concurrency,
        plan.part_size,
    )
    return replace(limits, concurrency=plan.concurrency, part_size=plan.part_size)


def limits_from_assignment(assignment: Assignment, box: MemoryBox = MemoryBox()) -> Limits:
    """The assignment's settings (``concurrency = 0`` means "no new parts" to the engine, like ``paused``),
    within the memory guard when the limit is known."""
    return within_memory(assignment.settings, box, f"assignment v{assignment.version}")
