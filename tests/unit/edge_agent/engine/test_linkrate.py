"""The link-rate estimator with the clock passed in: busy time only, samples of >= 1 s, an EWMA of tau = 10 s."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.linkrate import LinkEstimator

KiB = 1024


def feed(est: LinkEstimator, t: float, seconds: float, rate: float, step: float = 0.1) -> float:
    """One request on the wire from ``t`` for ``seconds`` moving ``rate`` bytes/s; returns the end time."""
    est.begin(t)
    end = t + seconds
    while t < end - 1e-9:
        dt = min(step, end - t)
        t += dt
        est.add(round(rate * dt), t)
    est.end(t)
    return t


def test_unknown_until_one_second_of_busy_time() -> None:
    est = LinkEstimator(now=0.0)
    assert est.rate(100.0) is None  # idle: nothing measured
    est.begin(100.0)
    est.add(50 * KiB, 100.5)
    assert est.rate(100.9) is None
    assert est.rate(101.0) == pytest.approx(50 * KiB)  # the first sample is taken as it is
    assert est.active == 1
    est.end(101.0)
    assert est.active == 0


def test_a_steady_link_is_measured_exactly_whatever_the_chunks() -> None:
    est = LinkEstimator(now=0.0)
    feed(est, 0.0, 30.0, 256 * KiB, step=0.013)
    assert est.rate(30.0) == pytest.approx(256 * KiB, rel=1e-3)


def test_idle_time_keeps_the_estimate() -> None:
    est = LinkEstimator(now=0.0)
    t = feed(est, 0.0, 5.0, 100 * KiB)
    assert est.rate(t + 3600.0) == pytest.approx(100 * KiB, rel=1e-3)  # an hour with nothing to send


def test_busy_time_with_nothing_moving_pulls_it_down() -> None:
    est = LinkEstimator(now=0.0)
    t = feed(est, 0.0, 5.0, 100 * KiB, step=0.25)  # whole samples: nothing left over
    est.begin(t)  # a stall: on the wire for 60 s, nothing acknowledged
    assert est.rate(t + 60.0) == pytest.approx(100 * KiB * math.exp(-6.0), rel=1e-3)


def test_two_requests_at_once_count_their_time_once_and_their_bytes_both() -> None:
    est = LinkEstimator(now=0.0)
    est.begin(0.0)
    est.begin(0.0)
    est.add(30 * KiB, 0.5)  # one request's bytes
    est.add(30 * KiB, 1.0)  # the other's
    est.end(1.0)
    est.end(1.0)
    assert est.rate(1.0) == pytest.approx(60 * KiB)  # not 30: one second of link, not two
    est.end(1.0)  # one end too many is ignored
    assert est.active == 0


@pytest.mark.parametrize(
    ("after_s", "low", "high"),
    [
        (10.0, 0.25, 0.45),  # tau: 63 % of the way from 1 MiB/s to 100 KiB/s (expected ~0.43 MiB/s)
        (30.0, 0.09, 0.16),  # 3 tau: 95 % (~0.14 MiB/s)
        (60.0, 0.09, 0.105),  # settled
    ],
)
def test_a_step_down_is_followed_within_a_few_tau(after_s: float, low: float, high: float) -> None:
    est = LinkEstimator(now=0.0)
    t = feed(est, 0.0, 60.0, 1024 * KiB)
    t = feed(est, t, after_s, 100 * KiB)
    rate = est.rate(t)
    assert rate is not None
    assert low * 1024 * KiB <= rate <= high * 1024 * KiB


@given(
    bounds=st.tuples(st.floats(1.0, 1e7), st.floats(1.0, 1e7)).map(sorted),
    events=st.lists(st.tuples(st.floats(0.001, 5.0), st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=80),
)
def test_the_estimate_stays_within_the_rates_it_was_fed(
    bounds: list[float], events: list[tuple[float, float, bool]]
) -> None:
    """An EWMA of samples is a weighted mean of them: fed rates in [lo, hi] (while busy), it stays in [lo, hi],
    however the time is cut and however many requests overlap; idle gaps change nothing."""
    lo, hi = bounds
    est = LinkEstimator(now=0.0)
    t = 0.0
    est.begin(t)
    for dt, where, second in events:
        if second and est.active == 1:
            est.begin(t)  # a second request joins (its bytes are in the same rate)
        elif not second and est.active == 2:
            est.end(t)
        t += dt
        est.add(int((lo + where * (hi - lo)) * dt), t)
        rate = est.rate(t)
        if rate is not None:
            assert lo * (1 - 1e-6) - 1000 <= rate <= hi * (1 + 1e-6)  # int(): < 1 byte per add, dt >= 1 ms
    while est.active:
        est.end(t)
    before = est.rate(t)
    assert est.rate(t + 10_000.0) == before


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tau_s"):
        LinkEstimator(now=0.0, tau_s=0.0)
    with pytest.raises(ValueError, match="bytes"):
        LinkEstimator(now=0.0).add(-1, 0.0)
