from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.engine.backoff import backoff_ceiling, full_jitter
from edge_agent.engine.bucket import TokenBucket, pace_burst, pace_quantum
from edge_agent.engine.limits import Limits
from edge_agent.engine.windows import is_open, parse_window, parse_windows, seconds_until_open

H = 3600


# -- token bucket (clock passed in, no sleeping) ---------------------------------------------------------
def test_bucket_unlimited() -> None:
    b = TokenBucket(0, now=0.0)
    assert b.take(10**9, 0.0) == 0.0
    assert pace_quantum(0) == 0


def test_bucket_table() -> None:
    b = TokenBucket(1000, now=0.0, burst=100)  # starts empty: nothing before any time passed
    assert b.take(50, 0.0) == pytest.approx(0.05)  # not given: ask again in 0.05 s
    assert b.take(50, 0.05) == 0.0  # given
    assert b.take(50, 0.05) == pytest.approx(0.05)
    assert b.take(100, 10.0) == 0.0  # refilled to the burst, not more
    assert b.take(1, 10.0) == pytest.approx(0.001)
    assert b.take(300, 10.2) == 0.0  # above the burst: given once full, as debt ...
    assert b.take(1, 10.2) == pytest.approx(0.201)  # ... that the next request waits for


def test_bucket_rate_change() -> None:
    b = TokenBucket(1000, now=0.0, burst=1000)
    assert b.take(1000, 1.0) == 0.0
    b.set_rate(2000, 1.0, burst=1000)
    assert b.take(1000, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rate"):
        b.set_rate(-1, 0.0)
    with pytest.raises(ValueError, match="take"):
        b.take(-1, 0.0)


@pytest.mark.parametrize(
    ("rate", "quantum"),
    [(0, 0), (1, 256), (12_800, 256), (1024 * 1024, 20_971), (40 * 1024 * 1024, 64 * 1024), (10**12, 64 * 1024)],
)
def test_pace_quantum(rate: int, quantum: int) -> None:
    assert pace_quantum(rate) == quantum
    assert TokenBucket(rate, now=0.0).burst == pace_burst(rate) == 2 * quantum


def _paced(rate: int, writers: int, lateness: list[float], think: list[float], total: int) -> list[tuple[float, int]]:
    """Simulated writers that share one bucket the way transfer/link.py does: one at a time asks for a chunk,
    sleeps what it is told plus some lateness (a loaded machine), asks again; a given chunk is written at once."""
    b = TokenBucket(rate, now=0.0)
    q = pace_quantum(rate)
    clocks = [0.0] * writers  # when each writer asks next
    written: list[tuple[float, int]] = []
    step = 0
    while sum(n for _, n in written) < total:
        w = min(range(writers), key=lambda i: clocks[i])
        t = max(clocks[w], written[-1][0] if written else 0.0)  # the pacing lock: one waiter at a time
        while (wait := b.take(q, t)) > 0:
            t += wait + lateness[step % len(lateness)]
            step += 1
        written.append((t, q))
        clocks[w] = t + think[step % len(think)]
        step += 1
    return written


def _max_in_window(written: list[tuple[float, int]], span: float) -> int:
    """The most bytes written in any window [t, t + span) (a window's best start is a write; times ascend)."""
    best = inside = lo = 0
    for t, n in written:
        inside += n
        while written[lo][0] <= t - span:
            inside -= written[lo][1]
            lo += 1
        best = max(best, inside)
    return best


@settings(max_examples=40, deadline=None)
@given(
    rate=st.integers(5_120, 16 * 1024 * 1024),
    writers=st.integers(1, 8),
    lateness=st.lists(st.floats(0, 0.3), min_size=1, max_size=8),
    think=st.lists(st.floats(0, 0.05), min_size=1, max_size=8),
)
def test_paced_writes_stay_within_10_percent_of_the_cap_over_any_second(
    rate: int, writers: int, lateness: list[float], think: list[float]
) -> None:
    """Tokens are taken when bytes go: late writers send later, never in a burst (any 1 s window <= 1.1 cap);
    and without lateness the cap is reached."""
    written = _paced(rate, writers, lateness, think, total=2 * rate)
    assert _max_in_window(written, 1.0) <= pace_burst(rate) + rate <= 1.1 * rate
    on_time = _paced(rate, writers, [0.0], [0.0], total=2 * rate)
    assert on_time[-1][0] <= sum(n for _, n in on_time) / rate + 1e-6  # the bucket starts empty: the full rate


@settings(max_examples=60, deadline=None)
@given(
    rate=st.integers(1, 10**7),
    takes=st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 5)), min_size=1, max_size=40),
    span=st.floats(0.01, 10),
)
def test_bucket_never_exceeds_burst_plus_rate(rate: int, takes: list[tuple[int, float]], span: float) -> None:
    """Whatever callers ask, what is given in any interval of T seconds is <= burst + rate * T (+ one request
    above the burst, given as debt)."""
    b = TokenBucket(rate, now=0.0)
    t, given_ = 0.0, []
    for nbytes, think in takes:
        t += think
        while (wait := b.take(nbytes, t)) > 0:
            t += wait
        given_.append((t, nbytes))
    biggest = max(n for _, n in given_)
    for start, _ in given_:
        inside = sum(n for u, n in given_ if start <= u < start + span)
        assert inside <= b.burst + rate * span + max(0, biggest - b.burst) + 1e-6 * inside


# -- windows --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("windows", "t", "open_", "until"),
    [
        ((), 5 * H, True, 0),
        (("22:00-06:00",), 23 * H, True, 0),
        (("22:00-06:00",), 3 * H, True, 0),
        (("22:00-06:00",), 6 * H, False, 16 * H),  # the end minute is outside
        (("22:00-06:00",), 12 * H, False, 10 * H),
        (("01:00-02:00", "13:00-14:00"), 2 * H + 30, False, 11 * H - 30),
        (("01:00-02:00", "13:00-14:00"), 13 * H, True, 0),
        (("08:00-08:00",), 3 * H, True, 0),  # whole day
    ],
)
def test_windows(windows: tuple[str, ...], t: int, open_: bool, until: int) -> None:
    ws = parse_windows(windows)
    assert is_open(ws, t) is open_
    assert seconds_until_open(ws, t) == until


@pytest.mark.parametrize("bad", ["24:00-01:00", "1:00-02:00", "01:00-02:60", "01:00", ""])
def test_bad_window(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_window(bad)
    with pytest.raises(ValueError, match="HH:MM"):
        Limits(windows=(bad,))


@given(st.lists(st.tuples(st.integers(0, 1439), st.integers(0, 1439)), min_size=1, max_size=4), st.floats(0, 86399))
def test_until_open_lands_in_a_window(spans: list[tuple[int, int]], t: float) -> None:
    ws = parse_windows([f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans])
    wait = seconds_until_open(ws, t)
    assert 0 <= wait < 86400
    assert is_open(ws, t + wait)
    assert (wait == 0) == is_open(ws, t)


# -- backoff --------------------------------------------------------------------------------------------
@given(attempt=st.integers(0, 200), u=st.floats(0, 1, exclude_max=True))
def test_full_jitter_bounds(attempt: int, u: float) -> None:
    d = full_jitter(attempt, u)
    assert 0 <= d <= backoff_ceiling(attempt) <= 30.0


def test_backoff_grows_then_caps() -> None:
    assert [backoff_ceiling(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    with pytest.raises(ValueError, match="u must"):
        full_jitter(0, 1.0)
    with pytest.raises(ValueError, match="attempt"):
        backoff_ceiling(-1)


@pytest.mark.parametrize(
    "kwargs", [{"concurrency": -1}, {"part_size": 0}, {"bandwidth_bps": -1}, {"compression_level": 9}]
)
def test_limits_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Limits(**kwargs)


def test_limits_stopped() -> None:
    assert Limits(paused=True).stopped
    assert Limits(concurrency=0).stopped
    assert not Limits().stopped
