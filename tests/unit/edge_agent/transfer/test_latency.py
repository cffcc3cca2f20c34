"""The agent's latency figures: the recent median (``RecentLatency``) and the wire's time to first byte of small
requests, with the clock passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.transfer.latency import RecentLatency
from edge_agent.transfer.wire import SMALL_REQUEST_BYTES, Watch


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_nothing_measured_is_none() -> None:
    assert RecentLatency().median() is None


def test_the_median_of_the_recent_samples_only() -> None:
    clock = Clock()
    recent = RecentLatency(window_s=60, clock=clock)
    recent.add(9.0)
    clock.t += 61  # older than the window: forgotten
    for seconds in (0.3, 0.1, 0.2):
        recent.add(seconds)
    assert recent.median() == 0.2
    clock.t += 61
    assert recent.median() is None


def test_a_negative_sample_is_ignored() -> None:
    recent = RecentLatency()
    recent.add(-1.0)
    assert recent.median() is None


@given(st.lists(st.floats(min_value=0, max_value=3600), min_size=1, max_size=100), st.integers(1, 16))
def test_the_median_is_one_of_the_last_samples_range(samples: list[float], keep: int) -> None:
    recent = RecentLatency(keep=keep)
    for seconds in samples:
        recent.add(seconds)
    median = recent.median()
    assert median is not None
    assert min(samples[-keep:]) <= median <= max(samples[-keep:])


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [(300, 0.25), (SMALL_REQUEST_BYTES, 0.25), (SMALL_REQUEST_BYTES + 1, None)],
)
def test_time_to_first_byte_of_small_requests_only(request_bytes: int, expected: float | None) -> None:
    clock = Clock()
    watch = Watch(30.0, clock=clock)
    watch.wrote(request_bytes, 0)
    clock.t += 0.25
    watch.answered()
    assert watch.first_byte_s == expected


def test_each_request_of_a_watch_counts_its_own_bytes() -> None:
    clock = Clock()
    watch = Watch(30.0, clock=clock)
    watch.wrote(SMALL_REQUEST_BYTES + 1, 0)  # a part: no figure
    watch.answered()
    assert watch.first_byte_s is None
    watch.wrote(200, 0)  # then a small request on the same watch (the next page of a listing)
    clock.t += 0.5
    watch.answered()
    assert watch.first_byte_s == 0.5


def test_no_figure_without_a_request_written() -> None:
    watch = Watch(30.0, clock=Clock())
    watch.answered()
    assert watch.first_byte_s is None
