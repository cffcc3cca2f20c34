"""Upload windows: ``"HH:MM-HH:MM"`` in local time; a window whose end is before its start spans midnight.

Pure: the caller passes the local wall-clock time as minutes since midnight (and seconds for precision).
Rules:
- no windows at all means "always open";
- ``start == end`` means the whole day;
- the start minute is inside, the end minute is outside.
"""

from __future__ import annotations

from collections.abc import Sequence

# the grammar and its one parser are the protocol's; what a window means to the uploader is here
from fleet_protocol.windows import Window as Window
from fleet_protocol.windows import parse_window as parse_window
from fleet_protocol.windows import parse_windows as parse_windows

DAY_S = 24 * 3600


def is_open(windows: Sequence[Window], t_s: float) -> bool:
    """``t_s``: local time of day in seconds (0 <= t_s < 86400)."""
    return not windows or any(w.contains(t_s % DAY_S) for w in windows)


def seconds_until_open(windows: Sequence[Window], t_s: float) -> float:
    """0 when open now, else the seconds until the next window starts (< 24 h)."""
    t = t_s % DAY_S
    if is_open(windows, t):
        return 0.0
    return min((w.start_s - t) % DAY_S for w in windows)
