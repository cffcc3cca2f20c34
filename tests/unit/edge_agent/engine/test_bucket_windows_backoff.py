from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.backoff import backoff_ceiling, full_jitter
from edge_agent.engine.bucket import TokenBucket
from edge_agent.engine.limits import Limits
from edge_agent.engine.windows import is_open, parse_window, parse_windows, seconds_until_open

H = 3600


# -- token bucket (clock passed in, no sleeping) ---------------------------------------------------------
def test_bucket_unlimited() -> None:
    b = TokenBucket(0, now=0.0)
    assert b.charge(10**9, 0.0) == 0.0


def test_bucket_table() -> None:
    b = TokenBucket(1000, now=0.0)  # starts empty: no burst before any time passed
    assert b.charge(500, 0.0) == pytest.approx(0.5)
    assert b.charge(500, 0.0) == pytest.approx(1.0)  # queues behind the first
    assert b.charge(0, 1.0) == pytest.approx(0.0)  # debt paid at t=1
    assert b.charge(1000, 3.0) == pytest.approx(0.0)  # refilled to the 1 s burst, not more
    assert b.charge(1000, 3.0) == pytest.approx(1.0)


def test_bucket_rate_change() -> None:
    b = TokenBucket(1000, now=0.0)
    b.charge(1000, 0.0)
    b.set_rate(2000, 0.0)
    assert b.charge(0, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rate"):
        b.set_rate(-1, 0.0)
    with pytest.raises(ValueError, match="charge"):
        b.charge(-1, 0.0)


@given(
    rate=st.integers(1, 10**7),
    sends=st.lists(st.tuples(st.integers(0, 10**7), st.floats(0, 5)), min_size=1, max_size=40),
)
def test_bucket_never_exceeds_rate(rate: int, sends: list[tuple[int, float]]) -> None:
    """Simulate callers that sleep what they are told: bytes sent by time T <= burst + rate * T."""
    b = TokenBucket(rate, now=0.0)
    t = 0.0
    sent = 0
    for nbytes, think in sends:
        t += think
        t += b.charge(nbytes, t)
        sent += nbytes
        assert sent <= rate + rate * t + 1e-6 * max(1, sent)


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
