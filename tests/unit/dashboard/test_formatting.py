from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard.formatting import age, compression_level, human_bytes, human_duration, human_rate, iso, temperature
from tests.unit.dashboard.factories import NOW


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 << 20, "5.0 MiB"),
        (3 << 40, "3.0 TiB"),
        (1 << 60, "1024.0 PiB"),
    ],
)
def test_human_bytes(value: int | None, text: str) -> None:
    assert human_bytes(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (-5, "0s"), (59.9, "59s"), (60, "1m 00s"), (3599, "59m 59s"), (3600, "1h 00m"), (90061, "1d 01h")],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_small_formats() -> None:
    assert human_rate(2048) == "2.0 KiB/s"
    assert human_rate(None) == "–"
    assert temperature(71.26) == "71.3 °C"
    assert temperature(None) == "–"
    assert compression_level(-1) == "raw"
    assert compression_level(5) == "FLAC 5"
    assert iso(NOW) == "2026-11-30T12:00:00Z"
    assert iso(None) == ""
    naive = datetime(2026, 11, 30, 11, 59)  # SQLite hands back naive UTC
    assert iso(naive) == "2026-11-30T11:59:00Z"
    assert age(naive, NOW) == "1m 00s"
    assert age(NOW - timedelta(hours=2), NOW) == "2h 00m"
    assert age(None, NOW) == "–"
