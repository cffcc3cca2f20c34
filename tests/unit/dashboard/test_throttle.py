from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.throttle import Backoff, BackoffPolicy, LoginThrottle, address_key, retry_after_header

POLICY = BackoffPolicy(free_failures=3, base_s=2.0, max_s=60.0)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (1, 0), (2, 0), (3, 2), (4, 4), (5, 8), (7, 32), (8, 60), (9, 60), (10**6, 60)],
)
def test_delay_doubles_after_the_free_failures_up_to_the_maximum(failures: int, delay: float) -> None:
    assert POLICY.delay(failures) == delay


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (time, "fail" | "ask"), what each "ask" answers
        ([(0, "fail"), (0, "fail"), (0, "ask")], [0]),
        ([(0, "fail"), (0, "fail"), (0, "fail"), (0, "ask"), (1.5, "ask"), (2, "ask")], [2, 0.5, 0]),
        ([(0, "fail")] * 4 + [(1, "ask"), (4, "ask")], [3, 0]),
        # quiet for the wait plus max_s: forgotten, three free failures again
        ([(0, "fail")] * 5 + [(8 + 60, "ask"), (68, "fail"), (68, "ask")], [0, 0]),
        ([(0, "fail")] * 5 + [(8 + 59, "ask"), (67, "fail"), (67, "ask")], [0, 16]),
    ],
)
def test_backoff_sequences(steps: list[tuple[float, str]], expected: list[float]) -> None:
    backoff = Backoff(POLICY)
    answers = []
    for now, what in steps:
        if what == "fail":
            backoff.fail("olga", now)
        else:
            answers.append(backoff.retry_after("olga", now))
    assert answers == expected


def test_keys_are_independent_and_reset_forgets() -> None:
    backoff = Backoff(POLICY)
    for _ in range(5):
        backoff.fail("a", 0)
    assert backoff.retry_after("a", 0) == 8
    assert backoff.retry_after("b", 0) == 0
    backoff.reset("a")
    assert backoff.retry_after("a", 0) == 0
    assert backoff.failures("a") == 0


def test_forgive_takes_one_failure_back() -> None:
    backoff = Backoff(POLICY)
    for _ in range(3):
        backoff.fail("a", 0)
    backoff.forgive("a")
    assert backoff.failures("a") == 2
    assert backoff.retry_after("a", 0) == 0
    backoff.forgive("a")
    backoff.forgive("a")
    backoff.forgive("a")  # nothing left: no error, no negative count
    assert backoff.failures("a") == 0
    assert len(backoff) == 0


def test_parallel_attempts_are_counted_when_they_start() -> None:
    throttle = LoginThrottle(POLICY, BackoffPolicy(100, 1, 60))
    assert [throttle.begin("olga", "a", 0) for _ in range(4)] == [0, 0, 0, 2]  # none has finished yet


def test_success_resets_the_user_but_not_the_address() -> None:
    throttle = LoginThrottle(POLICY, BackoffPolicy(4, 10, 60))
    for name in ("x", "y", "olga"):
        assert throttle.begin(name, "addr", 0) == 0
    throttle.succeeded("olga", "addr")  # olga's attempt is taken back from the address, x and y stay
    assert throttle.users.failures("olga") == 0
    assert throttle.addresses.failures("addr") == 2
    assert throttle.begin("z", "addr", 0) == 0
    assert throttle.begin("olga", "addr", 0) == 0
    assert throttle.begin("olga", "addr", 0) == 10  # four failures from this address


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # same /64, same key
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
        ("", "unknown"),
        (None, "unknown"),
        ("x" * 500, "x" * 100),
    ],
)
def test_address_key(host: str | None, key: str) -> None:
    assert address_key(host) == key


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1, "1"), (1.2, "2"), (899.5, "900")])
def test_retry_after_header_rounds_up(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


policies = st.builds(
    BackoffPolicy,
    free_failures=st.integers(1, 6),
    base_s=st.floats(0.5, 10),
    max_s=st.floats(10, 1000),
)
gaps = st.lists(st.floats(0, 2000, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=300)
@given(policy=policies, gaps=gaps)
def test_an_attacker_never_beats_the_backoff(policy: BackoffPolicy, gaps: list[float]) -> None:
    """Attempts at any times, all wrong: each one let through waited at least the delay its run had earned."""
    backoff = Backoff(policy)
    now, run, last = 0.0, 0, None
    for gap in gaps:
        now += gap
        wait = backoff.retry_after("k", now)
        assert 0 <= wait <= policy.max_s
        if last is not None and now >= last + policy.delay(run) + policy.max_s:
            run = 0  # forgotten after a quiet spell
        earned = 0.0 if last is None else max(0.0, last + policy.delay(run) - now)
        assert wait == pytest.approx(earned, abs=1e-6)
        if wait == 0:
            backoff.fail("k", now)
            run, last = run + 1, now


@settings(max_examples=200)
@given(policy=policies, times=st.lists(st.floats(0, 100), min_size=1, max_size=30), later=st.floats(0, 5000))
def test_waiting_only_shortens_the_wait(policy: BackoffPolicy, times: list[float], later: float) -> None:
    backoff = Backoff(policy)
    for t in sorted(times):
        backoff.fail("k", t)
    now = max(times)
    before = backoff.retry_after("k", now)
    after = backoff.retry_after("k", now + later)
    assert after == pytest.approx(max(0.0, before - later), abs=1e-6)


@settings(max_examples=100)
@given(keys=st.lists(st.text(min_size=1, max_size=4), max_size=200), capacity=st.integers(1, 20))
def test_memory_is_bounded(keys: list[str], capacity: int) -> None:
    backoff = Backoff(POLICY, capacity=capacity)
    for i, key in enumerate(keys):
        backoff.fail(key, float(i))
        assert len(backoff) <= capacity
    if keys:
        assert backoff.failures(keys[-1]) >= 1  # the newest is always kept
