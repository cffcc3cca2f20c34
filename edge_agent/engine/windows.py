"""Upload windows: ``"HH:MM-HH:MM"`` in local time; a window whose end is before its start spans midnight.

Pure: the caller passes the local wall-clock time as minutes since midnight (and seconds for precision).
Rules:
- no windows at all means "always open";
- ``start == end`` means the whole day;
- the start minute is inside, the end minute is outside.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
DAY_S = 24 * 3600


@dataclass(frozen=True)
class Window:
    start_s: int  # seconds after local midnight
    end_s: int

    def contains(self, t_s: float) -> bool:
        if self.start_s == self.end_s:
            return True
        if self.start_s < self.end_s:
            return self.start_s <= t_s < self.end_s
        return t_s >= self.start_s or t_s < self.end_s


def parse_window(text: str) -> Window:
    m = _WINDOW.match(text)
    if not m:
        raise ValueError(f"upload window must look like 'HH:MM-HH:MM', got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return Window(start_s=(h1 * 60 + m1) * 60, end_s=(h2 * 60 + m2) * 60)


def parse_windows(texts: Sequence[str]) -> tuple[Window, ...]:
    return tuple(parse_window(t) for t in texts)


def is_open(windows: Sequence[Window], t_s: float) -> bool:
    """``t_s``: local time of day in seconds (0 <= t_s < 86400)."""
    return not windows or any(w.contains(t_s % DAY_S) for w in windows)


def seconds_until_open(windows: Sequence[Window], t_s: float) -> float:
    """0 when open now, else the seconds until the next window starts (< 24 h)."""
    t = t_s % DAY_S
    if is_open(windows, t):
        return 0.0
    return min((w.start_s - t) % DAY_S for w in windows)
