"""Versions on the dashboard: the fleet table's column and filter (page, API and the live stream's view) and the
version-drift alert, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from fleet_base import __version__
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, put_agents
from tests.integration.dashboard.test_pages import cell, text


def _fleet(engine: Engine) -> None:
    put_agents(
        engine,
        [
            AgentSpec("pi-01"),
            AgentSpec("pi-02", extra={"software_version": "0.1.0"}),
            AgentSpec("pi-03", extra={"software_version": "0.1.0"}, online=False),
        ],
    )


def test_the_fleet_table_shows_and_filters_by_version(app_client: TestClient, engine: Engine) -> None:
    _fleet(engine)
    login(app_client, "vic")
    page = app_client.get("/").text
    assert [cell(page, agent, "version") for agent in ("pi-01", "pi-02")] == [__version__, "0.1.0"]
    options = page.split('id="version-filter"', 1)[1].split(">", 1)[1].split("</select>", 1)[0]
    assert text(options) == f"all versions {__version__} 0.1.0"
    old = app_client.get("/", params={"version": "0.1.0"}).text
    assert [agent for agent in ("pi-01", "pi-02", "pi-03") if f'id="agent-{agent}"' in old] == ["pi-02", "pi-03"]
    assert '<option value="0.1.0" selected>' in old
    agents = app_client.get("/api/agents", params={"version": __version__}).json()
    assert [a["agent_id"] for a in agents] == ["pi-01"]
    assert agents[0]["software_version"] == __version__
    assert app_client.get("/api/agents", params={"version": "x" * 129}).status_code == 422


def test_an_agent_behind_the_newest_version_raises_a_drift_alert(app_client: TestClient, engine: Engine) -> None:
    _fleet(engine)
    login(app_client, "vic")
    alerts = app_client.get("/api/fleet").json()["alerts"]
    drift = [(a["agent_id"], a["message"]) for a in alerts if a["kind"] == "version_drift"]
    assert drift == [("pi-02", f"pi-02 runs 0.1.0, not {__version__}")]  # pi-03 is offline: its own alert
    assert "pi-02 runs 0.1.0" in text(app_client.get("/").text)
    assert "pi-02 runs 0.1.0" in text(app_client.get("/agents/pi-02").text)
