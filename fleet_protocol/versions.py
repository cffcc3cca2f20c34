"""Release versions: their order, and which agents drift from the newest one (pure, no I/O).

The fleet's version drift is one rule that the dashboard shows as an alert and that the controller's alert
rules can take as it is: ``version_drift(versions, central)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PARTS = re.compile(r"\d+|[a-z]+")
_END = (1, 0, "")


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """An order of version strings: numbers compare as numbers, a release sorts after its own pre-releases
    (``0.2.0rc1`` < ``0.2.0`` < ``0.2.0.1`` < ``0.10.0``), anything else by its text. Total: any string has a key."""
    parts = [(2, int(p), "") if p.isdigit() else (0, 0, p) for p in _PARTS.findall(version.lower())]
    return (*parts, _END)


def newest(versions: list[str]) -> str:
    """The newest of ``versions`` (ignoring empty ones); "" when there is none."""
    known = [v for v in versions if v]
    return max(known, key=version_key) if known else ""


@dataclass(frozen=True)
class Drift:
    """``target``: the newest version seen (agents and the central services); ``behind``: agent id → the
    version of every agent that runs another one (an agent that never reported a version is not counted)."""

    target: str
    behind: dict[str, str] = field(default_factory=dict)


def version_drift(versions: Mapping[str, str], central: str = "") -> Drift:
    """Which agents do not run the newest version seen among ``versions`` (agent id → its reported version)
    and ``central`` (the version of the controller or dashboard asking)."""
    target = newest([*versions.values(), central])
    return Drift(target, {agent: v for agent, v in sorted(versions.items()) if v and v != target})
