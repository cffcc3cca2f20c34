"""The upload window grammar, ``"HH:MM-HH:MM"`` in local time, and its one parser. Pure, pydantic-free.

Every place that accepts a window (the ``Assignment`` message, the assignment value, the controller's and the
agent's configuration, an operator's override) checks it here. What a window means to the uploader (open or
closed at a time of day, how long until it opens) is the agent's: ``edge_agent.engine.windows``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: ASCII digits only (``\\d`` would take any Unicode digit); the JSON schema of the ``Assignment`` says the same
WINDOW_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"
_WINDOW_RE = re.compile(WINDOW_PATTERN)


@dataclass(frozen=True)
class Window:
    """One parsed window; an end before the start spans midnight, ``start == end`` is the whole day."""

    start_s: int  # seconds after local midnight
    end_s: int

    def contains(self, t_s: float) -> bool:
        """The start minute is inside, the end minute is outside."""
        if self.start_s == self.end_s:
            return True
        if self.start_s < self.end_s:
            return self.start_s <= t_s < self.end_s
        return t_s >= self.start_s or t_s < self.end_s


def parse_window(text: str) -> Window:
    if not is_valid_window(text):
        raise ValueError(f"upload window must look like 'HH:MM-HH:MM', got {text!r}")
    h1, m1, h2, m2 = int(text[0:2]), int(text[3:5]), int(text[6:8]), int(text[9:11])
    return Window(start_s=(h1 * 60 + m1) * 60, end_s=(h2 * 60 + m2) * 60)


def parse_windows(texts: Iterable[str]) -> tuple[Window, ...]:
    return tuple(parse_window(t) for t in texts)


def is_valid_window(text: str) -> bool:
    """``fullmatch``: ``$`` alone would accept a trailing newline."""
    return isinstance(text, str) and _valid(text)


@functools.lru_cache(maxsize=1024)  # a fleet uses a handful of windows; every assignment built checks them
def _valid(text: str) -> bool:
    return _WINDOW_RE.fullmatch(text) is not None
