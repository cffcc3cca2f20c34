"""The recordings list's queries on SQLite and PostgreSQL: every filter, sort and order, walked page by page
with the cursor, against the same list computed in Python; ties, unknown values, a row arriving between two
pages, and the capped count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controller.store.database import create_all, make_engine
from dashboard.recordings_query import capped_count, recording_detail, recordings_page
from dashboard.recordings_view import (
    NATURAL_ORDER,
    CursorCodec,
    RecordingFilter,
    RecordingSort,
    RecordingStatus,
    RecordingView,
    SortOrder,
)
from edgefleet.localservices.postgres import Postgres
from tests.integration.dashboard.recordings_seed import T0, put_recordings, recording

pytestmark = pytest.mark.integration

CODEC = CursorCodec("test-secret-key-0123456789")


def catalog_rows() -> list[dict[str, Any]]:
    """24 rows with ties in every sort (equal times, durations, sizes, agents) and unknown values."""
    rows = []
    for n in range(24):
        changes: dict[str, Any] = {
            "site": "barn" if n % 2 else "garden",
            "duration_s": float(30 * (n % 5)),  # 0, 30, 60, 90, 120: ties
            "original_bytes": 1000 * (n % 4),  # ties
            "codec": "raw" if n % 4 == 3 else "flac",
        }
        if 5 <= n <= 9:
            changes["recorded_at"] = T0 + timedelta(
                hours=5
            )  # five recordings of the same second (one failed: four with a known time)
            changes["uploaded_at"] = T0 + timedelta(hours=5, minutes=1)
        if n in (3, 9):  # not read yet / unreadable: nothing known but what the upload said
            status = "pending" if n == 3 else "failed"
            changes |= {"status": status, "recorded_at": None, "duration_s": None, "sample_rate": None}
            changes["error"] = "not a WAV file" if n == 9 else ""
        if n == 14:
            changes |= {"status": "pending", "duration_s": None}  # the time is known (file name), the length not
        rows.append(recording(n, **changes))
    return rows


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, list[dict[str, Any]]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('recordings') / 'edgefleet.db'}"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database()
    engine = make_engine(url)
    create_all(engine)
    rows = catalog_rows()
    for row, row_id in zip(rows, put_recordings(engine, rows), strict=True):
        row["id"] = row_id
    yield engine, rows
    engine.dispose()


# --- the same list in Python ----------------------------------------------------------------------------------

_VALUE: dict[RecordingSort, str] = {
    RecordingSort.RECORDED_AT: "recorded_at",
    RecordingSort.UPLOADED_AT: "uploaded_at",
    RecordingSort.DURATION: "duration_s",
    RecordingSort.SIZE: "original_bytes",
    RecordingSort.AGENT: "agent_id",
}


def _passes(row: dict[str, Any], f: RecordingFilter) -> bool:
    checks = [
        not f.agent or row["agent_id"] == f.agent,
        not f.site or row["site"] == f.site,
        not f.codec or row["codec"] == f.codec,
        f.status is None or row["status"] == f.status.value,
        f.recorded_from is None or (row["recorded_at"] is not None and row["recorded_at"] >= f.recorded_from),
        f.recorded_to is None or (row["recorded_at"] is not None and row["recorded_at"] < f.recorded_to),
        f.min_duration_s is None or (row["duration_s"] is not None and row["duration_s"] >= f.min_duration_s),
        f.max_duration_s is None or (row["duration_s"] is not None and row["duration_s"] <= f.max_duration_s),
    ]
    return all(checks)


def expected_ids(rows: list[dict[str, Any]], view: RecordingView) -> list[int]:
    """Known values in ``(value, id)`` order, then unknown ones by id (in the same direction)."""
    name = _VALUE[view.sort]
    kept = [r for r in rows if _passes(r, view.filter)]
    known = sorted((r for r in kept if r[name] is not None), key=lambda r: (r[name], r["id"]), reverse=view.descending)
    unknown = sorted((r for r in kept if r[name] is None), key=lambda r: r["id"], reverse=view.descending)
    return [r["id"] for r in known + unknown]


def walk(engine: Engine, view: RecordingView, between: Callable[[], None] = lambda: None) -> list[list[int]]:
    """Every page of the view, following the cursors (through their encoded form, as a client would)."""
    pages: list[list[int]] = []
    with Session(engine) as session:
        while True:
            page = recordings_page(session, view, CODEC)
            pages.append([r.id for r in page.items])
            assert len(pages) < 100, "the cursor does not advance"
            if page.next_cursor is None:
                return pages
            between()
            view = replace(view, after=CODEC.decode(page.next_cursor, view))


# --- tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(RecordingSort))
@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("limit", [1, 7])
def test_every_sort_pages_through_every_row_once(
    catalog: tuple[Engine, list[dict[str, Any]]], sort: RecordingSort, order: SortOrder, limit: int
) -> None:
    engine, rows = catalog
    view = RecordingView(sort=sort, order=order, limit=limit)
    pages = walk(engine, view)
    assert [i for p in pages for i in p] == expected_ids(rows, view)
    assert all(len(p) == limit for p in pages[:-1])
    assert 0 < len(pages[-1]) <= limit


FILTERS = [
    RecordingFilter(agent="pi-01"),
    RecordingFilter(site="barn"),
    RecordingFilter(codec="raw"),
    RecordingFilter(status=RecordingStatus.PENDING),
    RecordingFilter(status=RecordingStatus.FAILED),
    RecordingFilter(recorded_from=T0 + timedelta(hours=5), recorded_to=T0 + timedelta(hours=12)),
    RecordingFilter(recorded_from=T0 + timedelta(hours=20)),
    RecordingFilter(recorded_to=T0 + timedelta(hours=5)),  # exclusive: not the five of 05:00
    RecordingFilter(min_duration_s=60),
    RecordingFilter(min_duration_s=30, max_duration_s=60),
    RecordingFilter(max_duration_s=0),
    RecordingFilter(site="garden", recorded_from=T0, recorded_to=T0 + timedelta(hours=10), codec="flac"),
    RecordingFilter(agent="pi-02", min_duration_s=30, status=RecordingStatus.CATALOGED),
    RecordingFilter(agent="nobody"),
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.params().items()))
@pytest.mark.parametrize("sort", [RecordingSort.RECORDED_AT, RecordingSort.DURATION, RecordingSort.AGENT])
def test_filters_combine(
    catalog: tuple[Engine, list[dict[str, Any]]], flt: RecordingFilter, sort: RecordingSort
) -> None:
    engine, rows = catalog
    view = RecordingView(filter=flt, sort=sort, order=NATURAL_ORDER[sort], limit=3)
    expected = expected_ids(rows, view)
    assert [i for p in walk(engine, view) for i in p] == expected
    with Session(engine) as session:
        assert capped_count(session, flt) == (len(expected), False)
        page = recordings_page(session, view, CODEC)
    assert page.matching == len(expected)
    assert (page.next_cursor is None) == (len(expected) <= 3)


def test_the_four_of_one_second_are_split_across_pages_without_loss(
    catalog: tuple[Engine, list[dict[str, Any]]],
) -> None:
    engine, rows = catalog
    tied = {r["id"] for r in rows if r["recorded_at"] == T0 + timedelta(hours=5)}
    view = RecordingView(filter=RecordingFilter(recorded_from=T0 + timedelta(hours=5)), limit=3)
    pages = walk(engine, view)
    seen = [i for p in pages for i in p]
    assert len(seen) == len(set(seen))
    assert tied <= set(seen)
    assert any(len(tied & set(p)) == 1 for p in pages), "a page boundary falls inside the tie"


def test_count_is_capped(catalog: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, rows = catalog
    with Session(engine) as session:
        assert capped_count(session, RecordingFilter(), cap=5) == (5, True)
        assert capped_count(session, RecordingFilter(), cap=len(rows)) == (len(rows), False)
        assert capped_count(session, RecordingFilter(), cap=len(rows) - 1) == (len(rows) - 1, True)


def test_pending_and_failed_rows_are_listed_as_such(catalog: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, _rows = catalog
    with Session(engine) as session:
        page = recordings_page(session, RecordingView(limit=50), CODEC)
    states = {r.file: (r.status, r.error, r.recorded_at) for r in page.items}
    assert states["rec-00003.wav"] == ("pending", "", None)
    assert states["rec-00009.wav"] == ("failed", "not a WAV file", None)
    assert [r.file for r in page.items][-2:] == ["rec-00009.wav", "rec-00003.wav"]  # unknown times come last
    assert all(r.recorded_at is None or r.recorded_at.utcoffset() == timedelta(0) for r in page.items)


def test_one_recording_with_its_metadata(catalog: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, rows = catalog
    with Session(engine) as session:
        detail = recording_detail(session, rows[7]["id"])
        assert recording_detail(session, 10**12) is None
    assert detail is not None
    assert detail.recording.key == rows[7]["key"]
    assert detail.recording.recorded_at == T0 + timedelta(hours=5)
    assert detail.recorder_metadata == {"bext": {"description": "take 7"}}
    assert detail.upload_event_id == 7


def test_rows_arriving_between_pages_neither_repeat_nor_hide_older_ones(engine: Engine) -> None:
    """A new recording (newest of all, or equal to the page boundary's time) lands before the cursor: the pages
    still list every row that was there exactly once."""
    rows = [recording(n, recorded_at=T0 + timedelta(hours=n // 3)) for n in range(12)]  # ties of three
    before = set(put_recordings(engine, rows))
    arrivals = iter(range(100, 200))

    def arrive() -> None:
        n = next(arrivals)
        put_recordings(engine, [recording(n, recorded_at=T0 + timedelta(hours=9 if n % 2 else 0))])

    pages = walk(engine, RecordingView(limit=4), between=arrive)
    seen = [i for p in pages for i in p]
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
