"""Queue control in the pure queue (edge_agent.engine.queue): ``apply_action``'s table, what ``pick_next`` then
takes, and the order ``queue_view`` lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.queue import (
    QueueCommand,
    QueueEntry,
    after_failure,
    apply_action,
    pick_next,
    queue_view,
)
from fleet_protocol.vocabulary import QUEUE_CHANGES, QueueAction, QueueState

MB = 1_000_000
A = QueueEntry("a", 1 * MB, 0.0)
B = QueueEntry("b", 2 * MB, 0.0, failures=2, not_before=500.0)
C = QueueEntry("c", 3 * MB, 0.0, first=4)
QUEUE = (A, B, C)


@pytest.mark.parametrize(
    ("action", "path", "expected", "error"),
    [
        (QueueAction.RETRY, "b", QueueEntry("b", 2 * MB, 0.0, failures=2), ""),
        (QueueAction.RETRY, "a", A, ""),  # nothing to clear
        (QueueAction.PRIORITIZE, "a", QueueEntry("a", 1 * MB, 0.0, first=5), ""),  # above the top (c's 4)
        (QueueAction.PRIORITIZE, "b", QueueEntry("b", 2 * MB, 0.0, failures=2, first=5), ""),  # backoff cleared
        (QueueAction.PRIORITIZE, "c", C, ""),  # already the front one: stays
        (QueueAction.HOLD, "a", QueueEntry("a", 1 * MB, 0.0, held=True), ""),
        (QueueAction.RELEASE, "a", A, ""),
        (QueueAction.HOLD, "zz", None, "no such file in the queue"),
        (QueueAction.LIST, "a", None, "list changes nothing"),
    ],
)
def test_the_table(action: QueueAction, path: str, expected: QueueEntry | None, error: str) -> None:
    outcome = apply_action(QUEUE, QueueCommand(action, path))
    assert outcome.entry == expected
    assert outcome.error.startswith(error) if error else outcome.error == ""


def test_release_undoes_hold_and_failure_keeps_the_marks() -> None:
    held = apply_action(QUEUE, QueueCommand(QueueAction.HOLD, "c")).entry
    assert held is not None
    assert apply_action([held], QueueCommand(QueueAction.RELEASE, "c")).entry == C
    failed = after_failure(held, now=10.0)
    assert (failed.held, failed.first, failed.failures) == (True, 4, 1)


@pytest.mark.parametrize(
    ("entries", "now", "busy", "expected"),
    [
        ([A, C], 0.0, (), "c"),  # the front one before a smaller file
        ([A, QueueEntry("c", 3 * MB, 0.0, first=4, held=True)], 0.0, (), "a"),  # held: never
        ([QueueEntry("a", 1, 0.0, held=True)], 1e9, (), None),
        ([A, QueueEntry("c", 3 * MB, 0.0, first=1), QueueEntry("d", 9 * MB, 0.0, first=2)], 0.0, (), "d"),  # latest
        ([A, QueueEntry("c", 3 * MB, 0.0, first=4, not_before=9.0)], 0.0, (), "a"),  # waiting stays waiting
        ([A, C], 0.0, ("c",), "a"),
    ],
)
def test_pick_next_with_marks(
    entries: list[QueueEntry], now: float, busy: tuple[str, ...], expected: str | None
) -> None:
    chosen = pick_next(entries, now, busy)
    assert (chosen.path if chosen else None) == expected


def test_the_view_lists_in_the_order_the_queue_takes_them() -> None:
    entries = [A, B, C, QueueEntry("h", 1, 0.0, held=True), QueueEntry("u", 5 * MB, 0.0)]
    views = queue_view(entries, now=100.0, busy={"u"})
    assert [(v.entry.path, v.state) for v in views] == [
        ("u", QueueState.UPLOADING),
        ("c", QueueState.QUEUED),
        ("a", QueueState.QUEUED),
        ("b", QueueState.WAITING),
        ("h", QueueState.HELD),
    ]
    assert [v.retry_in_s for v in views] == [None, None, None, 400.0, None]


entries_st = st.lists(
    st.builds(
        QueueEntry,
        path=st.sampled_from([f"f{i}" for i in range(8)]),
        size=st.integers(0, 10**10),
        enqueued_at=st.floats(0, 1e5),
        failures=st.integers(0, 5),
        not_before=st.floats(0, 2e5),
        held=st.booleans(),
        first=st.integers(0, 3),
    ),
    max_size=12,
    unique_by=lambda e: e.path,
)


@given(entries=entries_st, now=st.floats(0, 2e5))
def test_pick_next_never_takes_a_held_file_and_prefers_the_front(entries: list[QueueEntry], now: float) -> None:
    chosen = pick_next(entries, now)
    eligible = [e for e in entries if not e.held and e.not_before <= now]
    assert (chosen is None) == (not eligible)
    if chosen is not None:
        assert not chosen.held
        assert chosen.first == max(e.first for e in eligible)


@given(entries=entries_st, now=st.floats(0, 2e5))
def test_the_view_starts_with_the_pick_and_lists_every_entry(entries: list[QueueEntry], now: float) -> None:
    views = queue_view(entries, now)
    assert sorted(v.entry.path for v in views) == sorted(e.path for e in entries)
    chosen = pick_next(entries, now)
    if chosen is not None:
        assert views[0].entry == chosen


@given(entries=entries_st.filter(bool), data=st.data())
def test_after_prioritize_the_file_is_taken_next(entries: list[QueueEntry], data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(entries))
    outcome = apply_action(entries, QueueCommand(QueueAction.PRIORITIZE, target.path))
    assert outcome.entry is not None
    after = [outcome.entry if e.path == target.path else e for e in entries]
    if not target.held:
        chosen = pick_next(after, now=0.0)
        assert chosen is not None
        assert chosen.path == target.path


@given(entries=entries_st.filter(bool), data=st.data())
def test_every_change_keeps_the_file_and_its_size(entries: list[QueueEntry], data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(entries))
    action = data.draw(st.sampled_from(sorted(QUEUE_CHANGES)))
    entry = apply_action(entries, QueueCommand(action, target.path)).entry
    assert entry is not None
    assert (entry.path, entry.size, entry.enqueued_at, entry.failures) == (
        target.path,
        target.size,
        target.enqueued_at,
        target.failures,
    )
