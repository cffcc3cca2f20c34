"""The recordings list's pure parts: the filter's own checks, its query string, sort links, the signed cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.recordings_view import (
    CursorCodec,
    CursorError,
    Position,
    RecordingFilter,
    RecordingSort,
    RecordingStatus,
    RecordingView,
    SortOrder,
)

CODEC = CursorCodec("unit-test-secret-key")
T = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "because"),
    [
        ({"recorded_from": T, "recorded_to": T}, "`from` is not before `to`"),
        ({"recorded_from": T, "recorded_to": T - timedelta(seconds=1)}, "`from` is not before `to`"),
        ({"min_duration_s": 5.0, "max_duration_s": 4.9}, "`min_duration_s` is above `max_duration_s`"),
        ({"min_duration_s": 5.0, "max_duration_s": 5.0}, ""),
        ({"recorded_from": T, "recorded_to": T + timedelta(microseconds=1)}, ""),
        ({"recorded_from": T}, ""),
        ({"recorded_to": T}, ""),
        ({}, ""),
    ],
)
def test_an_inverted_range_matches_nothing_and_says_why(kwargs: dict[str, object], because: str) -> None:
    assert RecordingFilter(**kwargs).empty_because.startswith(because)  # type: ignore[arg-type]
    assert bool(RecordingFilter(**kwargs).empty_because) == bool(because)  # type: ignore[arg-type]


def test_filter_params_name_only_what_is_set() -> None:
    assert RecordingFilter().params() == {}
    f = RecordingFilter(
        agent="pi-01",
        status=RecordingStatus.FAILED,
        recorded_from=datetime(2026, 11, 1, 7, 0, tzinfo=UTC) + timedelta(hours=0),
        min_duration_s=1.5,
    )
    assert f.params() == {
        "agent": "pi-01",
        "status": "failed",
        "from": "2026-11-01T07:00:00+00:00",
        "min_duration_s": "1.5",
    }


@pytest.mark.parametrize(
    ("current", "order", "clicked", "expected"),
    [
        (RecordingSort.RECORDED_AT, SortOrder.DESC, "recorded_at", "asc"),  # the same column flips
        (RecordingSort.RECORDED_AT, SortOrder.ASC, "recorded_at", "desc"),
        (RecordingSort.RECORDED_AT, SortOrder.DESC, "agent", "asc"),  # another starts in its natural order
        (RecordingSort.AGENT, SortOrder.ASC, "duration", "desc"),
        (RecordingSort.AGENT, SortOrder.ASC, "size", "desc"),
    ],
)
def test_sort_links(current: RecordingSort, order: SortOrder, clicked: str, expected: str) -> None:
    view = RecordingView(filter=RecordingFilter(site="barn"), sort=current, order=order, after=Position(T, 4))
    query = parse_qs(view.sort_params(clicked))
    assert query == {"site": ["barn"], "sort": [clicked], "order": [expected]}  # a first page: no cursor


def test_params_keep_the_filter_and_a_non_default_limit() -> None:
    view = RecordingView(filter=RecordingFilter(codec="flac"), limit=20)
    assert parse_qs(view.params(cursor="abc")) == {
        "codec": ["flac"],
        "sort": ["recorded_at"],
        "order": ["desc"],
        "limit": ["20"],
        "cursor": ["abc"],
    }


VALUES = {
    RecordingSort.RECORDED_AT: st.one_of(
        st.none(), st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    ),
    RecordingSort.UPLOADED_AT: st.datetimes(timezones=st.just(UTC)),
    RecordingSort.DURATION: st.one_of(st.none(), st.floats(min_value=0, allow_nan=False, allow_infinity=False)),
    RecordingSort.SIZE: st.integers(min_value=0, max_value=2**63 - 1),
    RecordingSort.AGENT: st.text(max_size=64),
}


@st.composite
def views_and_positions(draw: st.DrawFn) -> tuple[RecordingView, Position]:
    sort = draw(st.sampled_from(list(RecordingSort)))
    view = RecordingView(
        filter=RecordingFilter(agent=draw(st.text(max_size=8)), min_duration_s=draw(st.none() | st.floats(0, 1e6))),
        sort=sort,
        order=draw(st.sampled_from(list(SortOrder))),
    )
    return view, Position(draw(VALUES[sort]), draw(st.integers(min_value=1, max_value=2**63 - 1)))


@given(views_and_positions())
def test_cursor_round_trips(case: tuple[RecordingView, Position]) -> None:
    view, position = case
    cursor = CODEC.encode(view, position)
    assert CODEC.decode(cursor, view) == position
    assert all(c.isalnum() or c in "-_." for c in cursor)  # safe in a URL as it is


@given(views_and_positions(), st.data())
def test_any_changed_character_is_refused(case: tuple[RecordingView, Position], data: st.DataObject) -> None:
    view, position = case
    cursor = CODEC.encode(view, position)
    at = data.draw(st.integers(min_value=0, max_value=len(cursor) - 1))
    replacement = data.draw(st.sampled_from("ABCabc019-_.").filter(lambda c: c != cursor[at]))
    changed = cursor[:at] + replacement + cursor[at + 1 :]
    try:
        decoded = CODEC.decode(changed, view)
    except CursorError:
        return
    # base64 without padding: the last character's low bits may not count; then it is the same cursor
    assert decoded == position


def test_cursor_is_bound_to_its_query_and_its_dashboard() -> None:
    view = RecordingView(filter=RecordingFilter(site="barn"))
    cursor = CODEC.encode(view, Position(T, 7))
    others = [
        RecordingView(filter=RecordingFilter(site="garden")),
        RecordingView(filter=RecordingFilter()),
        RecordingView(filter=RecordingFilter(site="barn"), order=SortOrder.ASC),
        RecordingView(filter=RecordingFilter(site="barn"), sort=RecordingSort.UPLOADED_AT),
    ]
    for other in others:
        with pytest.raises(CursorError, match="start from the first page"):
            CODEC.decode(cursor, other)
    with pytest.raises(CursorError, match="signature"):
        CursorCodec("another-secret-key").decode(cursor, view)
    assert CODEC.decode(cursor, RecordingView(filter=RecordingFilter(site="barn"), limit=5)) == Position(T, 7)


@pytest.mark.parametrize("cursor", ["", ".", "abc", "a.b.c", "!!!.???", "e30.", "e30.AAAAAAAAAAAAAAAAAAAAAA"])
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        CODEC.decode(cursor, RecordingView())


def test_a_signed_cursor_whose_value_does_not_fit_its_sort_is_refused() -> None:
    """Only a holder of the key could make one; it is refused all the same, not passed to the database."""
    view = RecordingView(sort=RecordingSort.SIZE)
    for value in ("big", None, 1.5, True):
        cursor = CODEC.encode(view, Position(value, 3))
        with pytest.raises(CursorError, match="does not fit"):
            CODEC.decode(cursor, view)
