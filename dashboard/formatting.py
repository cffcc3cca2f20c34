"""Human formatting for pages (Jinja filters); pure."""

from __future__ import annotations

from datetime import datetime

from controller.store.database import as_utc

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_rate(bps: float | None) -> str:
    return "–" if bps is None else f"{human_bytes(bps)}/s"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def age(moment: datetime | None, now: datetime) -> str:
    moment = as_utc(moment)
    return "–" if moment is None else human_duration((now - moment).total_seconds())


def iso(moment: datetime | None) -> str:
    moment = as_utc(moment)
    return "" if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def temperature(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} °C"


def latency(seconds: float | None) -> str:
    """A latency: milliseconds below 10 s ("12.3 ms", "153 ms", "1530 ms"), else seconds ("12 s")."""
    if seconds is None:
        return "–"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def compression_level(level: int | None) -> str:
    if level is None:
        return "–"
    return "raw" if level < 0 else f"FLAC {level}"
