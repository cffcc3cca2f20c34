"""The link-rate estimator with the clock passed in: completed parts only, each charged its share of the busy
time, samples of >= 1 s, an EWMA of tau = 10 s, never above what a part still on the wire allows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.linkrate import LinkEstimator

KiB = 1024
MiB = 1024 * KiB


def parts_in_a_row(est: LinkEstimator, t: float, seconds: float, rate: float, part_s: float = 2.0) -> float:
    """Parts one after the other from ``t`` for ``seconds``, each ``part_s`` long at ``rate``; returns the end."""
    end = t + seconds
    while t < end - 1e-9:
        dt = min(part_s, end - t)
        handle = est.begin(round(rate * dt), t)
        t += dt
        est.end(handle, True, t)
    return t


def test_unknown_until_a_completed_part_brings_one_second() -> None:
    est = LinkEstimator(now=0.0)
    assert est.rate(100.0) is None  # idle: nothing measured
    short = est.begin(50 * KiB, 100.0)
    est.end(short, True, 100.5)
    assert est.rate(100.5) is None  # half a second of share: not a sample yet
    long = est.begin(50 * KiB, 100.5)
    assert est.active == 1
    assert est.rate(100.99) is None  # a part on the wire is not a measurement
    est.end(long, True, 101.0)
    assert est.rate(101.0) == pytest.approx(100 * KiB)  # the first sample is taken as it is
    assert est.active == 0


def test_the_rate_so_far_is_the_answered_parts_before_the_first_sample() -> None:
    est = LinkEstimator(now=0.0)
    assert est.rate_so_far(1.0) is None  # nothing ended
    failed = est.begin(50 * KiB, 1.0)
    est.end(failed, False, 1.1)
    assert est.rate_so_far(1.1) is None  # time on the wire, no byte answered
    a, b = est.begin(40 * KiB, 1.1), est.begin(40 * KiB, 1.1)  # two parts share the link for 0.2 s
    est.end(a, True, 1.3)
    est.end(b, True, 1.3)
    assert est.rate(1.3) is None  # 0.3 s of share: no sample yet
    assert est.rate_so_far(1.3) == pytest.approx(80 * KiB / 0.3)  # the failed part's 0.1 s counts, with no bytes
    long = est.begin(100 * KiB, 1.3)
    est.end(long, True, 2.0)  # the first sample: the smoothed rate from here on
    assert est.rate_so_far(2.0) == est.rate(2.0) == pytest.approx(180 * KiB)


def test_a_steady_link_is_measured_exactly_whatever_the_part_lengths() -> None:
    est = LinkEstimator(now=0.0)
    parts_in_a_row(est, 0.0, 30.0, 256 * KiB, part_s=0.37)
    assert est.rate(30.0) == pytest.approx(256 * KiB, rel=1e-5)  # (whole bytes per part)


@pytest.mark.parametrize("streams", [1, 2, 4, 8, 16])
def test_parts_that_share_the_link_measure_the_whole_link_at_their_first_completion(streams: int) -> None:
    """``c`` parts of 8 MiB start together on a 2 MB/s link and end together: each was charged 1/c of the time,
    so the first one to end says 2 MB/s, not 2/c MB/s."""
    est = LinkEstimator(now=0.0)
    handles = [est.begin(8 * MiB, 0.0) for _ in range(streams)]
    done = streams * 8 * MiB / 2e6
    est.end(handles[0], True, done)
    assert est.rate(done) == pytest.approx(2e6, rel=1e-9)


def test_idle_time_keeps_the_estimate() -> None:
    est = LinkEstimator(now=0.0)
    t = parts_in_a_row(est, 0.0, 5.0, 100 * KiB)
    assert est.rate(t + 3600.0) == pytest.approx(100 * KiB, rel=1e-9)  # an hour with nothing to send


def test_a_failed_part_counts_its_time_with_no_bytes() -> None:
    est = LinkEstimator(now=0.0)
    t = parts_in_a_row(est, 0.0, 5.0, 100 * KiB)
    stalled = est.begin(5 * MiB, t)  # on the wire for 60 s, then cut: nothing arrived
    est.end(stalled, False, t + 60.0)
    assert est.rate(t + 60.0) == pytest.approx(100 * KiB * math.exp(-6.0), rel=1e-9)


def test_a_stopped_part_does_not_count() -> None:
    est = LinkEstimator(now=0.0)
    t = parts_in_a_row(est, 0.0, 5.0, 100 * KiB)
    stopped = est.begin(5 * MiB, t)
    est.cancel(stopped, t + 60.0)
    est.end(stopped, True, t + 61.0)  # an unknown handle is ignored
    assert est.rate(t + 61.0) == pytest.approx(100 * KiB, rel=1e-9)


@pytest.mark.parametrize(
    ("on_wire_s", "streams", "expected"),
    [
        (0.9, 1, 2e6),  # less than one sample of share: no bound yet
        (2.0, 1, 2e6),  # 4 MB in 2 s would still be 2 MB/s: not below the estimate
        (8.0, 1, 0.5e6),  # 8 s without completing 4 MB: at most 0.5 MB/s
        (8.0, 2, 1e6),  # two parts: each was charged 4 s
    ],
)
def test_parts_on_the_wire_too_long_pull_the_rate_down_before_they_end(
    on_wire_s: float, streams: int, expected: float
) -> None:
    est = LinkEstimator(now=0.0)
    t = parts_in_a_row(est, 0.0, 10.0, 2e6)
    for _ in range(streams):
        est.begin(4_000_000, t)
    assert est.rate(t + on_wire_s) == pytest.approx(expected, rel=1e-9)


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
    t = parts_in_a_row(est, 0.0, 60.0, 1024 * KiB)
    t = parts_in_a_row(est, t, after_s, 100 * KiB)
    rate = est.rate(t)
    assert rate is not None
    assert low * 1024 * KiB <= rate <= high * 1024 * KiB


class FairLink:
    """A link of ``rate`` bytes/s shared equally by the parts on it (what TCP flows on one bottleneck tend to);
    it tells the estimator when each part begins and completes."""

    def __init__(self, est: LinkEstimator) -> None:
        self.est = est
        self.t = 0.0
        self.rate = 1.0
        self.left: dict[int, float] = {}  # handle -> bytes still to move

    def add(self, nbytes: int) -> None:
        self.left[self.est.begin(nbytes, self.t)] = float(nbytes)

    def run(self, until: float) -> None:
        while self.left and self.t < until:
            each = self.rate / len(self.left)
            handle, least = min(self.left.items(), key=lambda kv: kv[1])
            finish = max(0.0, least / each)
            dt = min(finish, until - self.t)
            self.t += dt
            for h in self.left:
                self.left[h] -= each * dt
            if dt == finish:
                del self.left[handle]
                self.est.end(handle, True, self.t)
        self.t = max(self.t, until)


@given(
    rates=st.tuples(st.floats(1e3, 1e8), st.floats(1e3, 1e8)).map(sorted),
    events=st.lists(
        st.tuples(st.floats(0.0, 30.0), st.integers(1, 64 * MiB), st.floats(0.0, 1.0)), min_size=1, max_size=40
    ),
)
def test_on_a_fairly_shared_link_the_estimate_stays_within_the_rates_the_link_had(
    rates: list[float], events: list[tuple[float, int, float]]
) -> None:
    """Parts of any size arriving at any time on a link whose rate changes between ``lo`` and ``hi``: each
    part's bytes over its share is a rate the link had, an EWMA of such samples is a weighted mean of them, and
    a part on the wire has moved at least ``lo`` times its share (so its bound is above ``lo``). Idle time
    changes nothing."""
    lo, hi = rates
    est = LinkEstimator(now=0.0)
    link = FairLink(est)
    for gap, nbytes, where in events:
        link.run(link.t + gap)
        rate = est.rate(link.t)
        if rate is not None:
            assert lo * (1 - 1e-6) <= rate <= hi * (1 + 1e-6)
        link.rate = lo + where * (hi - lo)
        link.add(nbytes)
    link.run(math.inf)
    before = est.rate(link.t)
    assert before is None or lo * (1 - 1e-6) <= before <= hi * (1 + 1e-6)
    assert est.rate(link.t + 10_000.0) == before


@given(
    rate=st.floats(1e3, 1e8),
    events=st.lists(st.tuples(st.floats(0.0, 30.0), st.integers(1, 64 * MiB)), min_size=1, max_size=40),
)
def test_on_a_steady_fairly_shared_link_the_estimate_is_the_link(rate: float, events: list[tuple[float, int]]) -> None:
    est = LinkEstimator(now=0.0)
    link = FairLink(est)
    link.rate = rate
    for gap, nbytes in events:
        link.run(link.t + gap)
        measured = est.rate(link.t)
        assert measured is None or measured == pytest.approx(rate, rel=1e-6)
        link.add(nbytes)
    link.run(math.inf)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tau_s"):
        LinkEstimator(now=0.0, tau_s=0.0)
    with pytest.raises(ValueError, match="bytes"):
        LinkEstimator(now=0.0).begin(-1, 0.0)
