"""The dashboard's HTTP surface against a real database (SQLite and PostgreSQL): auth, roles, CSRF, data, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session

from controller.store import repo
from dashboard.readmodel import FleetSnapshot
from tests.integration.dashboard.conftest import login, page_csrf
from tests.integration.dashboard.seed import PASSWORDS, AgentSpec, MiB, put_agents, put_event, put_history

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "path",
    ["/api/fleet", "/api/agents", "/api/agents/pi-01", "/api/agents/pi-01/telemetry", "/api/audit", "/api/stream"],
)
def test_api_needs_login(app_client: TestClient, path: str) -> None:
    assert app_client.get(path).status_code == 401


@pytest.mark.parametrize("path", ["/", "/agents/pi-01", "/audit"])
def test_pages_redirect_to_login(app_client: TestClient, path: str) -> None:
    answer = app_client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_wrong_password_is_refused(app_client: TestClient) -> None:
    answer = app_client.post(
        "/login", data={"username": "olga", "password": "nope", "csrf_token": page_csrf(app_client)}
    )
    assert answer.status_code == 401
    assert app_client.get("/api/fleet").status_code == 401


def test_login_form_needs_csrf(app_client: TestClient) -> None:
    app_client.get("/login")
    answer = app_client.post("/login", data={"username": "olga", "password": PASSWORDS["olga"]}, follow_redirects=False)
    assert answer.status_code == 403
    assert app_client.get("/api/fleet").status_code == 401


def test_json_login_rejects_form_content_types(app_client: TestClient) -> None:
    # a cross-site form can send text/plain without a preflight: it must not log anyone in
    body = json.dumps({"username": "olga", "password": PASSWORDS["olga"]}).encode()
    answer = app_client.post("/api/login", content=body, headers={"content-type": "text/plain"})
    assert answer.status_code in (415, 422)
    ok = app_client.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]})
    assert ok.status_code == 200
    assert ok.json()["role"] == "operator"


def test_fleet_lists_agents_with_totals_and_alerts(app_client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    put_agents(
        engine,
        [
            AgentSpec("pi-01", temperature_c=50.0),
            AgentSpec("pi-02", temperature_c=74.5, throttled=0x4),
            AgentSpec("pi-03", online=False, site="barn"),
        ],
        now,
    )
    put_event(engine, "pi-01", "upload_completed", original_bytes=100 * MiB, stored_bytes=60 * MiB, file="a.wav")
    put_event(engine, "pi-01", "upload_failed", file="b.wav", reason="S3 unreachable")
    put_event(engine, "pi-02", "file_rejected", file="c.wav", reason="empty file")
    put_event(engine, "pi-01", "upload_completed", at=now - timedelta(days=2), original_bytes=7, stored_bytes=5)
    login(app_client, "vic")
    fleet = app_client.get("/api/fleet").json()
    fleet["agents"] = fleet["rows"]
    assert [a["agent_id"] for a in fleet["agents"]] == ["pi-01", "pi-02", "pi-03"]
    t = fleet["totals"]
    assert (t["agents"], t["online"], t["hot"]) == (3, 2, 1)
    assert (t["uploaded_today_files"], t["uploaded_today_bytes"], t["saved_today_bytes"]) == (1, 100 * MiB, 40 * MiB)
    assert (t["failures_today"], t["rejected_today"]) == (1, 1)
    assert t["throughput_bps"] == pytest.approx(4.0 * MiB)  # the offline agent's rate does not count
    kinds = {(a["agent_id"], a["kind"]) for a in fleet["alerts"]}
    assert kinds == {("pi-02", "hot"), ("pi-02", "throttled"), ("pi-03", "offline")}
    assert fleet["agents"][1]["throttle_flags"] == ["throttled"]


def test_agents_sort_and_filter(app_client: TestClient, engine: Engine) -> None:
    put_agents(
        engine,
        [
            AgentSpec("a", temperature_c=60.0, site="north"),
            AgentSpec("b", temperature_c=None, site="south"),
            AgentSpec("c", temperature_c=71.0, site="north"),
        ],
    )
    login(app_client, "vic")
    hottest = app_client.get("/api/agents", params={"sort": "temperature_c", "desc": "true"}).json()
    assert [a["agent_id"] for a in hottest] == ["c", "a", "b"]
    north = app_client.get("/api/agents", params={"q": "NORTH"}).json()
    assert [a["agent_id"] for a in north] == ["a", "c"]
    hot = app_client.get("/api/agents", params={"status": "hot"}).json()
    assert [a["agent_id"] for a in hot] == ["c"]
    assert app_client.get("/api/agents", params={"sort": "nonsense"}).status_code == 422


def test_agent_detail_history_uploads_failures(app_client: TestClient, engine: Engine) -> None:
    spec = AgentSpec("pi-07")
    now = datetime.now(UTC)
    put_history(engine, spec, samples=30, every=timedelta(minutes=1), end=now - timedelta(seconds=5))
    put_agents(engine, [spec], now)
    put_agents(engine, [AgentSpec("pi-07", concurrency=1, reason="72.0 °C ≥ 70 °C soft limit: concurrency 2 → 1")], now)
    put_event(
        engine, "pi-07", "upload_completed", file="a.wav", original_bytes=10 * MiB, stored_bytes=6 * MiB, retries=2
    )
    put_event(engine, "pi-07", "file_rejected", file="bad.wav", reason="not a WAV file")
    login(app_client, "vic")
    detail = app_client.get("/api/agents/pi-07").json()
    assert detail["row"]["assignment"]["concurrency"] == 1
    assert detail["cores"] == 4
    points = app_client.get("/api/agents/pi-07/telemetry", params={"range": "15m"}).json()
    assert 14 <= len(points) <= 17  # 15 one-minute samples plus the two of put_agents
    assert points == sorted(points, key=lambda p: p["at"])
    many = app_client.get("/api/agents/pi-07/telemetry", params={"range": "1h", "points": 10}).json()
    assert len(many) == 10
    uploads = app_client.get("/api/agents/pi-07/uploads").json()
    assert [(u["file"], u["ratio"], u["retries"]) for u in uploads] == [("a.wav", pytest.approx(0.6), 2)]
    failures = app_client.get("/api/agents/pi-07/failures").json()
    assert [(f["kind"], f["reason"]) for f in failures] == [("file_rejected", "not a WAV file")]
    history = app_client.get("/api/agents/pi-07/assignments").json()
    assert [h["version"] for h in history] == [2, 1]
    assert "soft limit" in history[0]["reason"]
    assert app_client.get("/api/agents/nobody").status_code == 404
    assert app_client.get("/api/agents/pi-07/telemetry", params={"range": "2y"}).status_code == 422


class Body(TypedDict, total=False):
    """What an operator action sends: a JSON body (the API) or a form (the pages)."""

    json: dict[str, object]
    data: dict[str, str]


OPERATOR_ACTIONS: list[tuple[str, str, Body]] = [
    ("POST", "/api/agents/pi-01/override", {"json": {"paused": True}}),
    ("DELETE", "/api/agents/pi-01/override", {}),
    ("POST", "/api/sites/garden/override", {"json": {"paused": True}}),
    ("DELETE", "/api/sites/garden/override", {}),
    ("POST", "/agents/pi-01/override", {"data": {"paused": "true"}}),
    ("POST", "/agents/pi-01/override", {"data": {"action": "clear"}}),
    ("POST", "/sites/garden/override", {"data": {"paused": "true"}}),
    ("POST", "/api/sites/garden/override", {"json": {"monthly_budget_bytes": 10**12}}),
    ("POST", "/api/agents/pi-01/override", {"json": {"daily_cap_bytes": 0}}),
    ("POST", "/sites/garden/budget", {"data": {"monthly_budget": "1 TB"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ACTIONS)
def test_viewer_cannot_change(app_client: TestClient, engine: Engine, method: str, path: str, body: Body) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    with Session(engine) as s:  # something a clear could remove
        repo.set_override(s, who="olga", agent_id="pi-01", paused=True)
        repo.set_override(s, who="olga", site="garden", paused=True)
    csrf = login(app_client, "vic")
    if "data" in body:
        body = {"data": {**body["data"], "csrf_token": csrf}}
    answer = app_client.request(method, path, headers={"X-CSRF-Token": csrf}, follow_redirects=False, **body)
    assert answer.status_code == 403
    assert "read only" in answer.text
    with Session(engine) as s:
        assert [(o.scope, o.paused) for o in repo.list_overrides(s)] == [("agent", True), ("site", True)]
        assert [a.who for a in repo.list_audit(s)] == ["olga", "olga"]


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_changes_need_the_csrf_token(app_client: TestClient, engine: Engine, token: str | None) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    login(app_client, "olga")
    headers = {} if token is None else {"X-CSRF-Token": token}
    assert app_client.post("/api/agents/pi-01/override", json={"paused": True}, headers=headers).status_code == 403
    assert app_client.delete("/api/agents/pi-01/override", headers=headers).status_code == 403
    data = {"paused": "true"} | ({} if token is None else {"csrf_token": token})
    assert app_client.post("/agents/pi-01/override", data=data, follow_redirects=False).status_code == 403
    with Session(engine) as s:
        assert repo.list_overrides(s) == []


def test_csrf_token_of_another_session_is_refused(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    stale = login(app_client, "olga")
    login(app_client, "olga")  # a new login makes a new session
    answer = app_client.post("/api/agents/pi-01/override", json={"paused": True}, headers={"X-CSRF-Token": stale})
    assert answer.status_code == 403


def test_override_via_api_is_stored_and_audited(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01", site="garden")])
    csrf = login(app_client, "olga")
    headers = {"X-CSRF-Token": csrf}
    body = {"paused": True, "windows": ["22:00-06:00"], "max_concurrency": 1}
    assert app_client.post("/api/agents/pi-01/override", json=body, headers=headers).status_code == 204
    assert (
        app_client.post("/api/agents/pi-01/override", json={"bandwidth_bps": 1000}, headers=headers).status_code == 204
    )
    overrides = app_client.get("/api/overrides").json()
    assert len(overrides) == 1
    o = overrides[0]
    assert (o["scope"], o["target"], o["paused"], o["windows"], o["max_concurrency"], o["bandwidth_bps"], o["by"]) == (
        "agent",
        "pi-01",
        True,
        ["22:00-06:00"],
        1,
        1000,
        "olga",
    )
    assert app_client.get("/api/agents/pi-01").json()["row"]["overridden"] is True
    assert app_client.post("/api/sites/garden/override", json={"upload_now": True}, headers=headers).status_code == 204
    assert app_client.delete("/api/agents/pi-01/override", headers=headers).status_code == 204
    audit = app_client.get("/api/audit").json()
    assert [(a["user"], a["action"], a["target"]) for a in audit] == [
        ("olga", "override.clear", "agent:pi-01"),
        ("olga", "override.set", "site:garden"),
        ("olga", "override.set", "agent:pi-01"),
        ("olga", "override.set", "agent:pi-01"),
    ]
    assert audit[2]["details"] == "bandwidth ≤ 1000 B/s"  # in words; as recorded in "changes"
    assert audit[2]["changes"] == {"bandwidth_cap_bps": 1000}
    assert audit[2]["summary"] == "set the override of agent pi-01"
    assert audit[0]["summary"] == "cleared the override of agent pi-01"
    assert [o["scope"] for o in app_client.get("/api/overrides").json()] == ["site"]


@pytest.mark.parametrize(
    "body",
    [{"windows": ["25:00-06:00"]}, {"max_concurrency": -1}, {"paused": "maybe"}, {"unknown": 1}, {"bandwidth_bps": -5}],
)
def test_invalid_override_is_refused_and_not_recorded(
    app_client: TestClient, engine: Engine, body: dict[str, object]
) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    csrf = login(app_client, "olga")
    assert app_client.post("/api/agents/pi-01/override", json=body, headers={"X-CSRF-Token": csrf}).status_code == 422
    with Session(engine) as s:
        assert repo.list_audit(s) == []


def test_override_form_round_trip(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    csrf = login(app_client, "olga")
    form = {
        "csrf_token": csrf,
        "paused": "",
        "windows": "22:00-06:00, 12:00-13:00",
        "max_concurrency": "3",
        "bandwidth_bps": "",
        "upload_now": "true",
        "action": "set",
    }
    answer = app_client.post("/agents/pi-01/override", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/agents/pi-01?msg=override-set"
    page = app_client.get("/agents/pi-01?msg=override-set").text
    assert "Override saved" in page
    assert "concurrency ≤ 3" in page
    assert "olga" in page
    bad = app_client.post("/agents/pi-01/override", data=form | {"windows": "soon"}, follow_redirects=False)
    assert bad.status_code == 422
    assert "invalid window" in bad.text
    cleared = app_client.post(
        "/agents/pi-01/override", data={"csrf_token": csrf, "action": "clear"}, follow_redirects=False
    )
    assert cleared.status_code == 303
    audit_page = app_client.get("/audit").text
    assert audit_page.count("override.set") == 1
    assert audit_page.count("override.clear") == 1


def test_pages_render(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01", temperature_c=81.0), AgentSpec("pi-02", online=False, site="barn")])
    put_event(engine, "pi-01", "upload_completed", file="a.wav", original_bytes=10 * MiB, stored_bytes=6 * MiB)
    login(app_client, "olga")
    fleet = app_client.get("/").text
    assert 'id="agent-pi-01"' in fleet
    assert 'id="agent-pi-02"' in fleet
    assert "81.0 °C ≥ 80 °C hard limit" in fleet
    assert "pi-02 is offline" in fleet
    assert 'id="override-form"' in fleet  # operators get the site override form
    agent = app_client.get("/agents/pi-01").text
    assert "a.wav" in agent
    assert "60.0 %" in agent
    assert 'id="chart-temperature"' in agent
    assert app_client.get("/agents/nobody").status_code == 404


def test_viewer_pages_have_no_override_form(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    login(app_client, "vic")
    assert 'id="override-form"' not in app_client.get("/").text
    assert 'id="override-form"' not in app_client.get("/agents/pi-01").text


def test_logout_ends_the_session(app_client: TestClient) -> None:
    csrf = login(app_client, "olga")
    assert app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert app_client.get("/api/fleet").status_code == 401


def test_metrics_exposes_fleet_and_agents(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01", temperature_c=71.5), AgentSpec("pi-02", online=False, site="barn")])
    text = app_client.get("/metrics").text
    assert 'edgefleet_agents{state="online"} 1.0' in text
    assert 'edgefleet_agents{state="offline"} 1.0' in text
    assert 'edgefleet_agent_temperature_celsius{agent="pi-01",site="garden"} 71.5' in text
    assert 'edgefleet_agent_up{agent="pi-02",site="barn"} 0.0' in text
    assert 'edgefleet_agent_uploaded_bytes_total{agent="pi-01",site="garden"}' in text
    assert "edgefleet_hot_agents 1.0" in text
    assert 'edgefleet_alerts{kind="offline"} 1.0' in text


def test_openapi_documents_the_api(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    for path in ("/api/fleet", "/api/agents", "/api/agents/{agent_id}/override", "/api/audit", "/metrics"):
        assert path in paths


def test_database_outage_is_a_503_not_a_crash(app_client: TestClient, engine: Engine) -> None:
    login(app_client, "vic")
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE current_assignment")  # the next fleet query fails
    answer = app_client.get("/api/fleet")
    assert answer.status_code == 503
    assert "database" in answer.json()["detail"]
    page = app_client.get("/")
    assert page.status_code == 503
    assert "database is not reachable" in page.text


def test_agent_supplied_text_is_escaped(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01", reason="<script>alert(1)</script>")])
    put_event(engine, "pi-01", "file_rejected", file="<img src=x onerror=alert(2)>.wav", reason="<b>bad</b>")
    login(app_client, "vic")
    for page in (app_client.get("/").text, app_client.get("/agents/pi-01").text):
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)" in page
    agent_page = app_client.get("/agents/pi-01").text
    assert "<img src=x" not in agent_page
    assert "&lt;b&gt;bad&lt;/b&gt;" in agent_page


def test_fleet_json_is_what_the_response_model_makes_of_the_snapshot(app_client: TestClient, engine: Engine) -> None:
    """``/api/fleet`` sends the shared snapshot's JSON made once per snapshot, not validated and serialized per
    request: the same document FastAPI makes from the ``FleetSnapshot`` response model, still documented as it."""
    put_agents(
        engine,
        [
            AgentSpec("pi-01", temperature_c=50.0, reason="ok"),
            AgentSpec("pi-02", temperature_c=81.0, throttled=0x4, paused=True),
            AgentSpec("pi-03", online=False, site="barn"),
        ],
    )
    login(app_client, "vic")
    answer = app_client.get("/api/fleet")
    assert answer.headers["content-type"] == "application/json"
    snapshot = app_client.app.state.ctx.snapshots.get()  # type: ignore[attr-defined]
    adapter = TypeAdapter(FleetSnapshot)
    expected = adapter.dump_python(adapter.validate_python(snapshot), mode="json")
    sent = answer.json()
    assert sent.pop("at") <= expected.pop("at")  # when each was read
    assert sent == expected
    assert [row["agent_id"] for row in sent["rows"]] == ["pi-01", "pi-02", "pi-03"]
    schema = app_client.get("/openapi.json").json()["paths"]["/api/fleet"]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"]["$ref"].endswith("/FleetSnapshot")
