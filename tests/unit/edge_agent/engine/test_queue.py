import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.queue import (
    AGING_BPS,
    RETRY_CAP_S,
    QueueEntry,
    after_failure,
    pick_next,
    priority,
    retry_delay,
)

MB = 1_000_000


@pytest.mark.parametrize(
    ("entries", "now", "busy", "expected"),
    [
        ([], 0, (), None),
        ([QueueEntry("big", 500 * MB, 0), QueueEntry("small", 5 * MB, 0)], 0, (), "small"),
        ([QueueEntry("big", 500 * MB, 0), QueueEntry("small", 5 * MB, 0)], 0, ("small",), "big"),
        # the big one waited 10 minutes: aging puts it first
        ([QueueEntry("big", 500 * MB, 0), QueueEntry("small", 5 * MB, 600)], 600, (), "big"),
        # failures move a file back ...
        ([QueueEntry("a", 5 * MB, 0, failures=1), QueueEntry("b", 50 * MB, 0)], 0, (), "b"),
        # ... and it is not taken before not_before
        ([QueueEntry("a", 5 * MB, 0, failures=1, not_before=10)], 5, (), None),
        ([QueueEntry("a", 5 * MB, 0, failures=1, not_before=10)], 10, (), "a"),
        # ties: enqueue time, then path
        ([QueueEntry("b", 5, 0), QueueEntry("a", 5, 0)], 0, (), "a"),
    ],
)
def test_pick_next(entries: list[QueueEntry], now: float, busy: tuple[str, ...], expected: str | None) -> None:
    got = pick_next(entries, now, busy)
    assert (got.path if got else None) == expected


@given(
    big=st.integers(0, 10**12),
    small=st.integers(0, 10**12),
    t_big=st.floats(0, 1e6),
    gap=st.floats(0, 1e6),
)
def test_aging_prevents_starvation(big: int, small: int, t_big: float, gap: float) -> None:
    """A file that has waited (size difference / aging rate) longer than another goes first."""
    old = QueueEntry("old", big, t_big)
    new_enq = t_big + max(0, big - small) / AGING_BPS + gap + 1.0
    new = QueueEntry("new", small, new_enq)
    chosen = pick_next([old, new], new_enq + 1)
    assert chosen is not None
    assert chosen.path == "old"


@given(st.lists(st.tuples(st.integers(0, 10**10), st.floats(0, 1e5)), min_size=1, max_size=20))
def test_pick_is_the_minimum_priority(items: list[tuple[int, float]]) -> None:
    entries = [QueueEntry(f"f{i}", s, t) for i, (s, t) in enumerate(items)]
    now = 2e5
    chosen = pick_next(entries, now)
    assert chosen is not None
    assert priority(chosen, now) == min(priority(e, now) for e in entries)


def test_retry_delay_grows_and_caps() -> None:
    delays = [retry_delay(n) for n in range(20)]
    assert delays[0] == 0
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == RETRY_CAP_S


def test_after_failure() -> None:
    e = after_failure(QueueEntry("a", 1, 5.0), now=100.0)
    assert (e.failures, e.not_before, e.enqueued_at) == (1, 100.0 + retry_delay(1), 5.0)
