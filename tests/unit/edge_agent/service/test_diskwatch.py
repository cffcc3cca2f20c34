"""The disk-low threshold with hysteresis: one event per drop below the threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.service.diskwatch import DiskWatch


@pytest.mark.parametrize(
    ("readings", "events", "low_after"),
    [
        ([2000, 1500, 1000], [False, False, False], False),  # never below 1000
        ([999], [True], True),
        ([999, 500, 0, 998], [True, False, False, False], True),  # still the same low
        ([999, 1000, 1099, 999], [True, False, False, False], True),  # not back above 1000 + 100: no new event
        ([999, 1100, 999], [True, False, True], True),  # back at 1100 ends it: the next drop is a new event
        ([999, 5000, 1050], [True, False, False], False),  # between the two: not low again
    ],
)
def test_table(readings: list[int], events: list[bool], low_after: bool) -> None:
    watch = DiskWatch(threshold=1000, hysteresis=100)
    assert [watch.observe(free) for free in readings] == events
    assert watch.low is low_after


def test_a_threshold_of_zero_is_never_low() -> None:
    watch = DiskWatch(threshold=0, hysteresis=100)
    assert not any(watch.observe(free) for free in (0, 0, 10, 0))


@given(
    st.integers(0, 10_000),
    st.integers(0, 1_000),
    st.lists(st.integers(0, 20_000), max_size=60),
)
def test_one_event_per_crossing(threshold: int, hysteresis: int, readings: list[int]) -> None:
    """Events count the drops below the threshold that follow a reading at threshold + hysteresis or above
    (or the start); never two without such a recovery between them."""
    watch = DiskWatch(threshold, hysteresis)
    events = [watch.observe(free) for free in readings]
    expected, armed = [], True
    for free in readings:
        expected.append(armed and free < threshold)
        if free < threshold:
            armed = False
        elif free >= threshold + hysteresis:
            armed = True
    assert events == expected
