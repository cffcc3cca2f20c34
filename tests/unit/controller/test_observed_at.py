"""``observed_at``: a reported time later than its arrival + skew counts as the arrival; it never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.store.agent_writes import observed_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        (NOW - timedelta(minutes=3), NOW - timedelta(minutes=3)),  # late: as reported
        (NOW + timedelta(seconds=4), NOW + timedelta(seconds=4)),  # a clock a little ahead: as reported
        (NOW + SKEW, NOW + SKEW),
        (NOW + SKEW + timedelta(microseconds=1), NOW),  # further ahead: the arrival
        (NOW + timedelta(hours=2), NOW),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), NOW),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))), NOW),  # beyond UTC's range
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), NOW),  # before year 1 in UTC: arrival
        (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)),  # a Pi without a clock yet
        (NOW.astimezone(timezone(timedelta(hours=2))), NOW),  # other zones: to UTC
    ],
)
def test_examples(sent_at: datetime, expected: datetime) -> None:
    result = observed_at(sent_at, NOW, SKEW)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
aware = st.builds(lambda dt, off: dt.replace(tzinfo=timezone(off)), st.datetimes(), offsets)


@given(sent_at=aware, skew_s=st.integers(min_value=0, max_value=3600))
def test_as_reported_up_to_arrival_plus_skew_else_the_arrival(sent_at: datetime, skew_s: int) -> None:
    skew = timedelta(seconds=skew_s)
    result = observed_at(sent_at, NOW, skew)
    assert result.tzinfo is UTC
    if datetime.min.replace(tzinfo=UTC) + timedelta(days=1) < sent_at <= NOW + skew:
        assert result == sent_at
    elif sent_at > NOW + skew:
        assert result == NOW
