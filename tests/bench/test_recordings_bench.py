"""Recordings page benchmark: 1,000,000 catalog rows on PostgreSQL; the API's p50/p95 per query, and keyset
against OFFSET side by side in the same run.

Run: ``.venv/bin/python -m pytest -m bench tests/bench/test_recordings_bench.py -s``. Results: docs/benchmarks.md
("Recordings page"). The rows are made by PostgreSQL itself in one ``INSERT … SELECT … generate_series`` (indexes
dropped before and made again after, as a restore would), then ``VACUUM (ANALYZE)``d, as autovacuum soon would
(Python-made rows through ``COPY`` took 5 minutes on the shared machine, this about one). Each query is timed
three ways, interleaved round by round:

- **API**: ``GET /api/recordings`` through the whole app in process (routing, login session, validation, cursor,
  SQL, JSON), page and capped count, as a client sees it minus the network;
- **keyset**: the same page read by ``dashboard.recordings_query.recordings_page`` alone;
- **OFFSET**: the same rows read by the same query with ``OFFSET n`` instead of the cursor, plus the same capped
  count (what a page-number pager would run).

"deep" pages start 90 % of the way into the query's rows (at most 900,000 rows in).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from controller.store.database import create_all, make_engine
from dashboard.app import create_app
from dashboard.config import parse_config
from dashboard.recordings_query import capped_count, conditions, known_segment, recordings_page
from dashboard.recordings_view import (
    NATURAL_ORDER,
    CursorCodec,
    Position,
    RecordingFilter,
    RecordingSort,
    RecordingView,
)
from edgefleet.localservices.postgres import Postgres
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import config_data

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

ROWS = int(os.environ.get("EDGEFLEET_BENCH_RECORDINGS", "1000000"))
ROUNDS = int(os.environ.get("EDGEFLEET_BENCH_ROUNDS", "30"))
OFFSET_ROUNDS = min(ROUNDS, 5)
AGENTS = 200
SITES = 20
START = datetime(2025, 12, 1, tzinfo=UTC)
#: recorders on a schedule: every agent starts a recording at the same minute of each slot (ties of up to 200)
SLOT = timedelta(minutes=105)
LIMIT = 50
#: the rows, made by the database itself (``generate_series``; ``setseed`` makes them the same every run): agent
#: ``n % 200`` at slot ``n // 200``; 70 % on the schedule (5 min long, on the slot's minute: ties of up to 200),
#: the rest triggered (1 s to 1 h long, up to 15 min after the slot); 1 % pending (nothing known yet), 0.2 %
#: failed; 3 % stored raw
_FILL = """
INSERT INTO recording (key, agent_id, site, file, uploaded_at, recorded_at, recorded_at_source, clock_suspect,
    duration_s, sample_rate, channels, bits_per_sample, original_bytes, stored_bytes, sha256, codec,
    recorder_metadata, upload_event_id, status, error, cataloged_at)
SELECT 'field/' || agent || '/' || lpad(n::text, 7, '0') || '.flac', agent,
    'site-' || lpad((n % 200 % 20)::text, 2, '0'),
    to_char(rec, 'YYYYMMDD_HH24MISS') || '.wav', rec + make_interval(secs => dur + 60),
    CASE WHEN known THEN rec END, CASE WHEN known THEN 'bext' ELSE '' END, false,
    CASE WHEN known THEN dur END, CASE WHEN known THEN 48000 END, CASE WHEN known THEN 1 END,
    CASE WHEN known THEN 16 END, (dur * 96000)::bigint + 44,
    CASE WHEN r4 < 0.97 THEN (dur * 96000 * 0.62)::bigint ELSE (dur * 96000)::bigint + 44 END,
    lpad(to_hex(n), 64, '0'), CASE WHEN r4 < 0.97 THEN 'flac' ELSE 'raw' END, '{}', n + 1,
    CASE WHEN r3 < 0.01 THEN 'pending' WHEN r3 < 0.012 THEN 'failed' ELSE 'cataloged' END,
    CASE WHEN r3 >= 0.01 AND r3 < 0.012 THEN 'not a WAV file' ELSE '' END,
    CASE WHEN known THEN rec + make_interval(secs => dur + 61) END
FROM (
    SELECT n, r3, r4, r3 >= 0.012 AS known, 'pi-' || lpad((n % 200)::text, 3, '0') AS agent,
        :start + (n / 200) * interval '105 minutes'
            + CASE WHEN r1 < 0.7 THEN interval '0' ELSE make_interval(secs => 1 + floor(r2 * 900)) END AS rec,
        CASE WHEN r1 < 0.7 THEN 300.0 ELSE round((1 + r2 * 3599)::numeric, 3)::float8 END AS dur
    FROM (
        SELECT n, random() AS r1, random() AS r2, random() AS r3, random() AS r4
        FROM generate_series(0, :rows - 1) AS n
    ) AS g
) AS s
"""


def bulk_load(engine: Engine, rows: int) -> dict[str, float]:
    """Fill the table in one statement with its indexes dropped, then make them again (as a restore would)."""
    timings: dict[str, float] = {}
    with engine.begin() as connection:
        indexes = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE tablename = 'recording' AND indexname <> 'recording_pkey'"
            )
        ).all()
        for name, _ in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
        connection.execute(text("SELECT setseed(0.15)"))
        started = time.perf_counter()
        connection.execute(text(_FILL), {"start": START, "rows": rows})
        timings["fill"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, definition in indexes:
            connection.execute(text(definition))
        timings["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # what autovacuum does to a table soon after a bulk load: the visibility map lets counts read the index only
        connection.execute(text("VACUUM (ANALYZE) recording"))
    timings["vacuum"] = time.perf_counter() - started
    return timings


@pytest.fixture(scope="module")
def catalog(postgres: Postgres) -> Iterator[Engine]:
    engine = make_engine(postgres.create_database("edgefleet_bench"))
    create_all(engine)
    timings = bulk_load(engine, ROWS)
    print(
        f"\n[postgresql] {ROWS:,} recordings: filled in {timings['fill']:.1f} s, indexes "
        f"{timings['indexes']:.1f} s, vacuum {timings['vacuum']:.1f} s"
    )
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class Case:
    name: str
    view: RecordingView


def cases() -> list[Case]:
    span = SLOT * (ROWS // AGENTS)  # a year at a million rows
    window = RecordingFilter(site="site-07", recorded_from=START + span * 0.3, recorded_to=START + span * 0.4)

    def view(flt: RecordingFilter | None = None, sort: RecordingSort = RecordingSort.RECORDED_AT) -> RecordingView:
        return RecordingView(filter=flt or RecordingFilter(), sort=sort, order=NATURAL_ORDER[sort], limit=LIMIT)

    return [
        Case("newest first (no filter)", view()),
        Case("agent pi-042", view(RecordingFilter(agent="pi-042"))),
        Case("site-07, a tenth of the time span", view(window)),
        Case("duration 10-20 min", view(RecordingFilter(min_duration_s=600, max_duration_s=1200))),
        Case("sorted by duration", view(sort=RecordingSort.DURATION)),
    ]


def offset_page(session: Session, view: RecordingView, offset: int) -> int:
    """What a page-number pager runs: the same query with OFFSET, and the same capped count."""
    query = known_segment(view, conditions(view.filter), view.limit).offset(offset)
    rows = session.execute(query).all()
    capped_count(session, view.filter)
    return len(rows)


def deep_position(session: Session, view: RecordingView) -> tuple[int, Position]:
    """90 % into the view's rows whose sort value is known (at most 900,000 in): the offset and its row."""
    where = conditions(view.filter)
    known = known_segment(view, where, ROWS).subquery()
    matching = int(session.execute(select(func.count()).select_from(known)).scalar_one())
    offset = max(1, min(int(matching * 0.9), 900_000))
    row = session.execute(known_segment(view, where, 1).offset(offset - 1)).one()
    value = row.duration_s if view.sort is RecordingSort.DURATION else row.recorded_at
    return offset, Position(value, row.id)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def test_recordings_at_a_million_rows(catalog: Engine) -> None:
    config = parse_config(config_data(str(catalog.url.render_as_string(hide_password=False))))
    codec = CursorCodec(config.secret_key)
    app = create_app(config, engine=catalog)
    measured: dict[str, dict[str, list[float]]] = {}
    with TestClient(app) as client, Session(catalog) as session:
        login(client, "vic")
        plans: list[tuple[str, RecordingView, int]] = []
        for case in cases():
            plans.append((f"{case.name}, first page", case.view, 0))
            offset, position = deep_position(session, case.view)
            plans.append((f"{case.name}, deep page ({offset:,} in)", replace(case.view, after=position), offset))
        for label, view, _ in plans:  # warm up: plans cached, pages in the buffer cache
            measured[label] = {"api": [], "keyset": [], "offset": []}
            _ok(client.get(f"/api/recordings?{_query(view, codec)}"))
        for round_ in range(ROUNDS):
            for label, view, offset in plans:
                url = f"/api/recordings?{_query(view, codec)}"
                measured[label]["api"].append(timed(partial(_get_ok, client, url)))
                measured[label]["keyset"].append(timed(partial(recordings_page, session, view, codec)))
                if round_ < OFFSET_ROUNDS:  # a deep OFFSET takes seconds: fewer rounds keep the run short
                    measured[label]["offset"].append(
                        timed(partial(offset_page, session, replace(view, after=None), offset))
                    )
    report(measured)
    # the point of keyset pages: the deepest page (900,000 rows in) costs about what the first one does, and far
    # less than OFFSET (with a few thousand rows OFFSET is cheap too: no claim)
    if ROWS >= 1_000_000:
        deepest = next(runs for label, runs in measured.items() if label.startswith("newest first (no filter), deep"))
        assert pct(deepest["keyset"], 50) * 10 < pct(deepest["offset"], 50), deepest


def _query(view: RecordingView, codec: CursorCodec) -> str:
    if view.after is None:
        return view.params()
    return view.params(cursor=codec.encode(replace(view, after=None), view.after))


def _ok(answer: Any) -> None:
    assert answer.status_code == 200, answer.text


def _get_ok(client: TestClient, url: str) -> None:
    _ok(client.get(url))


def report(measured: dict[str, dict[str, list[float]]]) -> None:
    load = os.getloadavg()
    print(
        f"\n{ROWS:,} rows, {ROUNDS} rounds, limit {LIMIT}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(f"(API and keyset: {ROUNDS} requests each; OFFSET: {OFFSET_ROUNDS}, its p95 is about its slowest)")
    print("| query | API p50 / p95 ms | keyset p50 / p95 ms | OFFSET p50 / p95 ms | OFFSET ÷ keyset (p50) |")
    print("|---|---|---|---|---|")
    for label, runs in measured.items():
        api, keyset, offset = runs["api"], runs["keyset"], runs["offset"]
        print(
            f"| {label} | {pct(api, 50):.1f} / {pct(api, 95):.1f} | {pct(keyset, 50):.1f} / {pct(keyset, 95):.1f} | "
            f"{pct(offset, 50):.1f} / {pct(offset, 95):.1f} | {pct(offset, 50) / pct(keyset, 50):.1f} |"
        )
