"""Login throttling, server-side sessions, cookie flags and security headers of the real app.

Sessions and the throttle live in the dashboard process, not in the database, so these run on SQLite
only; the monotonic clock is injected, so backoff and expiry are tested without waiting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from controller.store import repo
from dashboard.app import create_app
from dashboard.auth import SESSION_COOKIE
from dashboard.config import parse_config
from dashboard.security import CONTENT_SECURITY_POLICY
from tests.integration.dashboard.conftest import login, page_csrf
from tests.integration.dashboard.seed import PASSWORDS, AgentSpec, config_data, put_agents
from tests.integration.dashboard.test_stream import events

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'controller.db'}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(engine: Engine, database_url: str) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(clock: FakeClock | None = None, raise_server_exceptions: bool = True, **config: object) -> TestClient:
        settings = parse_config(config_data(database_url, live_interval_s=0.05, snapshot_max_age_s=0, **config))
        app = create_app(settings, engine=engine, monotonic=clock or FakeClock())
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def form_login(client: TestClient, user: str, password: str) -> object:
    return client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": page_csrf(client)},
        follow_redirects=False,
    )


# --- throttling ---------------------------------------------------------------------------------------------


def test_failed_logins_back_off_with_429_and_retry_after(make_client: MakeClient) -> None:
    clock = FakeClock()
    client = make_client(clock, login_max_failures=3, login_backoff_base_s=30, login_backoff_max_s=600)
    for _ in range(3):
        assert client.post("/api/login", json={"username": "olga", "password": "wrong"}).status_code == 401
    refused = client.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert "too many failed logins" in refused.json()["detail"].lower()
    form = form_login(client, "olga", PASSWORDS["olga"])  # the form is refused the same way
    assert form.status_code == 429  # type: ignore[attr-defined]
    assert form.headers["retry-after"] == "30"  # type: ignore[attr-defined]
    assert "Too many failed logins" in form.text  # type: ignore[attr-defined]
    assert client.get("/api/fleet").status_code == 401

    clock.now += 29
    assert client.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]}).status_code == 429
    clock.now += 1
    assert client.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]}).status_code == 200
    # the success reset olga's failures: three more wrong ones before the next wait
    for _ in range(3):
        assert client.post("/api/login", json={"username": "olga", "password": "wrong"}).status_code == 401
    assert client.post("/api/login", json={"username": "olga", "password": "wrong"}).status_code == 429
    metrics = client.get("/metrics").text
    assert 'edgefleet_dashboard_logins_total{outcome="throttled"} 4.0' in metrics
    assert 'edgefleet_dashboard_logins_total{outcome="failed"} 6.0' in metrics


def test_unknown_user_names_are_throttled_like_real_ones(make_client: MakeClient) -> None:
    client = make_client(login_max_failures=2, login_backoff_base_s=10)
    codes = {
        name: [client.post("/api/login", json={"username": name, "password": "wrong"}).status_code for _ in range(3)]
        for name in ("olga", "nobody")
    }
    assert codes == {"olga": [401, 401, 429], "nobody": [401, 401, 429]}


def test_one_client_address_is_throttled_across_user_names(make_client: MakeClient) -> None:
    client = make_client(login_max_failures_per_address=4, login_backoff_base_s=10)
    codes = [client.post("/api/login", json={"username": f"u{i}", "password": "wrong"}).status_code for i in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    assert client.post("/api/login", json={"username": "vic", "password": PASSWORDS["vic"]}).status_code == 429


# --- server-side sessions -----------------------------------------------------------------------------------


def test_a_cookie_captured_before_logout_is_refused_after(make_client: MakeClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    client = make_client()
    csrf = login(client, "olga")
    captured = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303

    thief = TestClient(client.app)  # another browser, same dashboard
    thief.cookies.set(SESSION_COOKIE, captured)
    assert thief.get("/api/fleet").status_code == 401
    assert thief.get("/api/me").status_code == 401
    page = thief.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    change = thief.post("/api/agents/pi-01/override", json={"paused": True}, headers={"X-CSRF-Token": csrf})
    assert change.status_code == 401
    with Session(engine) as s:
        assert repo.list_overrides(s) == []


def test_a_csrf_token_dies_with_its_session(make_client: MakeClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    client = make_client()
    old = login(client, "olga")
    client.post("/logout", data={"csrf_token": old}, follow_redirects=False)
    new = login(client, "olga")
    assert new != old
    stale = client.post("/api/agents/pi-01/override", json={"paused": True}, headers={"X-CSRF-Token": old})
    assert stale.status_code == 403
    fresh = client.post("/api/agents/pi-01/override", json={"paused": True}, headers={"X-CSRF-Token": new})
    assert fresh.status_code == 204


def test_logging_in_again_revokes_the_previous_session(make_client: MakeClient) -> None:
    client = make_client()
    login(client, "vic")
    first = client.cookies[SESSION_COOKIE]
    login(client, "olga")
    replay = TestClient(client.app)
    replay.cookies.set(SESSION_COOKIE, first)
    assert replay.get("/api/me").status_code == 401
    assert client.get("/api/me").json()["user"] == "olga"


def test_sessions_expire_on_the_server(make_client: MakeClient) -> None:
    clock = FakeClock()
    client = make_client(clock, session_max_age_s=600)
    login(client, "vic")
    clock.now += 599
    assert client.get("/api/fleet").status_code == 200
    clock.now += 1
    assert client.get("/api/fleet").status_code == 401


def test_a_restarted_dashboard_knows_no_sessions(make_client: MakeClient) -> None:
    client = make_client()
    login(client, "vic")
    restarted = make_client()  # same secret key, new process state
    restarted.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    assert restarted.get("/api/fleet").status_code == 401


@pytest.mark.timeout(60)
def test_the_live_stream_ends_at_logout(make_client: MakeClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    client = make_client()
    csrf = login(client, "vic")
    other_tab = TestClient(client.app)
    other_tab.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    with other_tab.stream("GET", "/api/stream") as response:
        stream = events(response.iter_lines())
        assert next(stream)[0] == "fleet"
        assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        put_agents(engine, [AgentSpec("pi-01", temperature_c=75.0)])  # a change that would be sent
        assert list(stream) == []  # the stream ended instead


# --- cookies and TLS ----------------------------------------------------------------------------------------


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


@pytest.mark.parametrize(
    ("config", "secure"),
    [({}, False), ({"behind_tls_proxy": True}, True), ({"secure_cookies": True}, True)],
)
def test_session_cookie_flags(make_client: MakeClient, config: dict[str, object], secure: bool) -> None:
    client = make_client(**config)
    answer = client.post("/api/login", json={"username": "vic", "password": PASSWORDS["vic"]})
    header = answer.headers["set-cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=")
    assert "samesite=lax" in header.lower()
    assert {"httponly", "path", "max-age", "samesite"} <= cookie_attributes(header)
    assert ("secure" in cookie_attributes(header)) == secure
    assert ("strict-transport-security" in answer.headers) == secure


# --- security headers ---------------------------------------------------------------------------------------

ANONYMOUS = ["/login", "/api/fleet", "/", "/static/app.css", "/docs", "/openapi.json", "/metrics", "/none"]
LOGGED_IN = ["/", "/agents/pi-01", "/agents/nobody", "/agents/bad%20id", "/audit", "/api/fleet", "/api/agents/x"]


def assert_security_headers(answer: object, path: str) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY", path
    assert headers["x-content-type-options"] == "nosniff", path
    assert headers["referrer-policy"] == "no-referrer", path
    assert "strict-transport-security" not in headers, path  # plain HTTP here


def test_every_answer_has_the_security_headers(make_client: MakeClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    client = make_client()
    for path in ANONYMOUS:
        assert_security_headers(client.get(path, follow_redirects=False), path)
    login(client, "olga")
    for path in LOGGED_IN:
        assert_security_headers(client.get(path), path)
    bad = client.post("/agents/pi-01/override", data={"csrf_token": "forged"})
    assert bad.status_code == 403
    assert_security_headers(bad, "forged csrf")
    assert client.get("/api/fleet").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def test_a_crash_answers_500_with_the_headers_too(make_client: MakeClient) -> None:
    client = make_client(raise_server_exceptions=False)
    login(client, "vic")

    def broken() -> None:
        raise RuntimeError("a bug")

    client.app.state.ctx.snapshots.get = broken  # type: ignore[attr-defined]
    answer = client.get("/api/fleet")
    assert answer.status_code == 500
    assert_security_headers(answer, "500")


def test_bad_ids_are_refused_before_the_database(make_client: MakeClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    client = make_client()
    csrf = login(client, "olga")
    assert client.get("/api/agents/pi%0001").status_code == 422
    assert client.get("/api/audit", params={"target": "agent:\x00"}).status_code == 422
    long_site = client.post("/api/sites/" + "s" * 129 + "/override", json={}, headers={"X-CSRF-Token": csrf})
    assert long_site.status_code == 422
    page = client.get("/agents/pi%0001")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")


def test_templates_have_no_inline_script_or_style() -> None:
    templates = Path(__file__).parents[3] / "dashboard" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "javascript:" not in text, template.name
        assert "style=" not in text, template.name
        assert "<style" not in text, template.name


# --- Swagger UI from local files ----------------------------------------------------------------------------


def test_docs_load_swagger_ui_from_here(make_client: MakeClient) -> None:
    client = make_client()
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(urlsplit(src).netloc in ("", "testserver") for src in sources), sources  # no CDN
    local = [src for src in sources if urlsplit(src).path != "/favicon.ico"]  # the site's icon, on every page
    assert all(urlsplit(src).path.startswith("/static/swagger-ui/") for src in local), sources
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 100
    assert "<script>" not in page.text
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["paths"]["/api/fleet"]
