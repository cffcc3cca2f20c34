"""``Limits``: what the controller's assignment sets; it can change while the engine runs.

They are the assignment's settings themselves (``fleet_protocol.assignment.AssignmentSettings``, pydantic-free):
valid by construction, with the defaults an agent runs with before its first assignment. ``concurrency`` counts
the parts in flight across all files (0 = no new parts, like ``paused``); ``part_size`` is a request the part
plan grows to fit 10,000 parts; ``bandwidth_bps`` is one token bucket for the whole engine.
"""

from __future__ import annotations

from fleet_protocol.assignment import AssignmentSettings as Limits
from fleet_protocol.assignment import MiB

__all__ = ["Limits", "MiB"]
