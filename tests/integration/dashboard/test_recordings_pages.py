"""The recordings page and its JSON API through the real app (SQLite and PostgreSQL): who may read, what the page
shows, following the cursor, and the 4xx answers to bad input and changed cursors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dashboard.recordings_view import CursorCodec, RecordingView
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.recordings_seed import T0, put_recordings, recording
from tests.integration.dashboard.seed import config_data

pytestmark = pytest.mark.integration


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    rows = [recording(n) for n in range(7)]
    rows[2] |= {"status": "pending", "recorded_at": None, "duration_s": None, "sample_rate": None}
    rows[4] |= {"status": "failed", "error": "truncated RIFF chunk", "duration_s": None}
    rows[5] |= {"clock_suspect": True, "site": "barn", "codec": "raw"}
    return put_recordings(engine, rows)


def test_api_needs_login_and_the_page_redirects_to_it(app_client: TestClient) -> None:
    for path in ("/api/recordings", "/api/recordings/1"):
        assert app_client.get(path).status_code == 401
    answer = app_client.get("/recordings?site=barn", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Frecordings%3Fsite%3Dbarn"


def test_viewers_and_operators_read_the_page(app_client: TestClient, ids: list[int]) -> None:
    for user in ("vic", "olga"):
        login(app_client, user)
        page = app_client.get("/recordings")
        assert page.status_code == 200
        check_page(page.text, ids)


def check_page(html: str, ids: list[int]) -> None:
    assert '/recordings">Recordings</a>' in html  # the nav link
    for i in ids:
        assert f'<a href="/recordings/{i}"' in html
    assert "7 recordings match" in html
    assert 'data-status="pending"' in html
    assert ">pending</span>" in html
    assert "truncated RIFF chunk" in html
    assert ">failed</span>" in html
    assert "clock?" in html
    # newest first; the one whose time is not known yet last
    order = [html.index(f'id="recording-{i}"') for i in (ids[6], ids[5], ids[0], ids[2])]
    assert order == sorted(order)


def test_the_page_follows_the_cursor_and_keeps_the_filter(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "vic")
    first = app_client.get("/recordings?limit=3&site=garden&sort=duration&order=asc")
    assert first.status_code == 200
    link = first.text.split('id="next-page"', 1)[0].rsplit('href="?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "site=garden" in link
    assert "sort=duration" in link
    assert "cursor=" in link
    second = app_client.get(f"/recordings?{link}")
    assert second.status_code == 200
    assert 'id="first-page"' in second.text
    shown = [i for i in ids if f'id="recording-{i}"' in first.text or f'id="recording-{i}"' in second.text]
    assert len(shown) == 6  # every garden recording (one is at the barn) on two pages


def test_the_page_explains_bad_input(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "vic")
    inverted = app_client.get("/recordings?from=2026-11-02&to=2026-11-01")
    assert inverted.status_code == 200
    assert "`from` is not before `to`" in inverted.text
    assert "0 recordings match" in inverted.text
    assert app_client.get("/recordings?limit=0").status_code == 422
    refused = app_client.get("/recordings?cursor=abc.def")
    assert refused.status_code == 409
    assert "not a cursor of this dashboard" in refused.text


def test_api_lists_filters_and_pages(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "vic")
    body = app_client.get("/api/recordings", params={"limit": 4}).json()
    assert [r["id"] for r in body["items"]] == [ids[6], ids[5], ids[4], ids[3]]
    assert (body["matching"], body["matching_capped"], body["sort"], body["order"]) == (7, False, "recorded_at", "desc")
    rest = app_client.get("/api/recordings", params={"limit": 4, "cursor": body["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == [ids[1], ids[0], ids[2]]
    assert rest["next_cursor"] is None

    window = {"from": (T0 + timedelta(hours=1)).isoformat(), "to": "2026-11-01T10:00:00", "codec": "flac"}
    assert [r["id"] for r in app_client.get("/api/recordings", params=window).json()["items"]] == [ids[3], ids[1]]
    barn = app_client.get("/api/recordings", params={"site": "barn"}).json()["items"]
    assert [(r["id"], r["clock_suspect"], r["codec"]) for r in barn] == [(ids[5], True, "raw")]
    failed = app_client.get("/api/recordings", params={"status": "failed"}).json()["items"]
    assert [(r["id"], r["error"]) for r in failed] == [(ids[4], "truncated RIFF chunk")]
    for inverted in ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01"}, {"min_duration_s": 9, "max_duration_s": 8}):
        nothing = app_client.get("/api/recordings", params=inverted)
        assert nothing.status_code == 200
        assert (nothing.json()["items"], nothing.json()["matching"]) == ([], 0)
    far = {"from": "0001-01-01T00:00:00+05:00", "to": "9999-12-31T23:59:59-05:00"}  # beyond UTC's years: clamped
    assert len(app_client.get("/api/recordings", params=far).json()["items"]) == 6
    durations = app_client.get("/api/recordings", params={"min_duration_s": 1, "sort": "duration"}).json()["items"]
    assert len(durations) == 5


def test_api_one_recording(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "olga")
    body = app_client.get(f"/api/recordings/{ids[1]}").json()
    assert body["recording"]["key"] == "field/pi-01/rec-00001.flac"
    assert body["recorder_metadata"] == {"bext": {"description": "take 1"}}
    missing = app_client.get(f"/api/recordings/{ids[-1] + 1000}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"no recording {ids[-1] + 1000}"}
    assert app_client.get("/api/recordings/0").status_code == 422


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


BAD_INPUT: list[tuple[dict[str, object], int, str]] = [
    ({"min_duration_s": "nan"}, 422, "finite"),
    ({"min_duration_s": -1}, 422, "greater than or equal"),
    ({"sort": "key"}, 422, "recorded_at"),
    ({"order": "sideways"}, 422, "asc"),
    ({"status": "lost"}, 422, "pending"),
    ({"limit": 501}, 422, "less than or equal"),
    ({"agent": "pi\x0001"}, 422, "pattern"),
    ({"from": "yesterday"}, 422, "datetime"),
    ({"from": "5865559"}, 422, "ISO 8601"),  # not Unix seconds: the schema says ISO 8601 text (found by the fuzz test)
    ({"to": "1.7e9"}, 422, "ISO 8601"),
    ({"cursor": "not a cursor"}, 422, "pattern"),
    ({"cursor": "bm90.YSBjdXJzb3I"}, 409, "signature"),
]


def test_api_refuses_bad_input_clearly(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "vic")
    for params, status, says in BAD_INPUT:
        answer = app_client.get("/api/recordings", params=params)
        assert answer.status_code == status, (params, answer.text)
        assert says in answer.text, params


def test_a_changed_or_foreign_cursor_is_refused(app_client: TestClient, ids: list[int]) -> None:
    login(app_client, "vic")
    cursor = app_client.get("/api/recordings", params={"limit": 2}).json()["next_cursor"]
    assert app_client.get("/api/recordings", params={"limit": 2, "cursor": cursor}).status_code == 200
    payload, _signature = cursor.split(".")
    changed = [_flip(cursor, 3), _flip(cursor, len(payload) + 2), payload, cursor + "x"]
    # the same position, signed by another dashboard
    view = RecordingView(limit=2)
    position = CursorCodec(config_data("")["secret_key"]).decode(cursor, view)  # type: ignore[arg-type]
    changed.append(CursorCodec("another-secret-key-0123456789").encode(view, position))
    for bad in changed:
        answer = app_client.get("/api/recordings", params={"limit": 2, "cursor": bad})
        assert answer.status_code in (409, 422), bad
    for other in ({"sort": "size"}, {"order": "asc"}, {"site": "barn"}):
        answer = app_client.get("/api/recordings", params={"limit": 2, "cursor": cursor, **other})
        assert answer.status_code == 409
        assert "start from the first page" in answer.json()["detail"]
