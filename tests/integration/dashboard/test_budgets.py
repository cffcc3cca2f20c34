"""Metered sites on the dashboard (SQLite and PostgreSQL): the budget bar, the agent's use, the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from controller.store.models import AgentUsage
from dashboard.app import create_app
from dashboard.config import parse_config
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, config_data, put_agents

pytestmark = pytest.mark.integration
GB = 10**9
CONTROLLER_TOML = """
[mqtt]
url = "mqtt://controller:pw@127.0.0.1:1883"
[policy]
budget_overhead_fraction = 0.0
[policy.sites.lte]
monthly_budget_bytes = 10_000_000_000
agent_daily_cap_bytes = 2_000_000_000
"""


@pytest.fixture
def client(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    controller = tmp_path / "controller.toml"
    controller.write_text(CONTROLLER_TOML)
    data = config_data(database_url, controller_config=str(controller), snapshot_max_age_s=0, metrics_cache_s=0)
    with TestClient(create_app(parse_config(data), engine=engine)) as client:
        login(client, "vic")
        yield client


def use(engine: Engine, agent_id: str, at: datetime, nbytes: int) -> None:
    with Session(engine) as session:
        hour = at.replace(minute=0, second=0, microsecond=0)
        session.add(AgentUsage(agent_id=agent_id, hour=hour, bytes_sent=nbytes))
        session.commit()


def test_a_spent_site_budget_shows_on_the_fleet_page_and_in_the_api(engine: Engine, client: TestClient) -> None:
    now = datetime.now(UTC)
    put_agents(engine, [AgentSpec("pi-a", site="lte"), AgentSpec("pi-b", site="lte"), AgentSpec("pi-c")], now)
    use(engine, "pi-a", now, 7 * GB)
    use(engine, "pi-b", now, 4 * GB)
    use(engine, "pi-c", now, 50 * GB)  # another site: not metered
    (site,) = client.get("/api/sites/budgets").json()
    assert (site["site"], site["budget_bytes"], site["used_bytes"]) == ("lte", 10 * GB, 11 * GB)
    assert site["spent"]
    assert site["held"]
    page = client.get("/").text
    assert 'id="budget-lte"' in page
    assert "held: monthly budget spent, resumes on" in page

    agent = client.get("/api/agents/pi-a/budget").json()
    assert (agent["used_today_bytes"], agent["daily_cap_bytes"], agent["left_today_bytes"]) == (7 * GB, 2 * GB, 0)
    assert agent["site_budget"]["spent"]
    assert client.get("/api/agents/pi-c/budget").json() is None
    assert client.get("/api/agents/nobody/budget").status_code == 404
    agent_page = client.get("/agents/pi-a").text
    assert "Data sent today" in agent_page
    used_today = agent_page.split('id="f-used-today">', 1)[1].split("</dd>", 1)[0]
    assert used_today.endswith("daily cap")


def test_a_site_within_its_budget_shows_what_is_left_today(engine: Engine, client: TestClient) -> None:
    now = datetime.now(UTC)
    put_agents(engine, [AgentSpec("pi-a", site="lte")], now)
    use(engine, "pi-a", now - timedelta(days=40), 9 * GB)  # an older month does not count
    (site,) = client.get("/api/sites/budgets").json()
    assert site["used_bytes"] == 0
    assert not site["held"]
    assert site["left_today_bytes"] == site["allowance_today_bytes"] > 0
    assert "left today" in client.get("/").text


def test_an_operator_raises_a_spent_budget_and_sets_a_daily_cap_a_viewer_may_not(
    engine: Engine, client: TestClient
) -> None:
    now = datetime.now(UTC)
    put_agents(engine, [AgentSpec("pi-a", site="lte")], now)
    use(engine, "pi-a", now, 11 * GB)
    raise_it = {"monthly_budget_bytes": 1000 * GB}  # today's allowance ≥ 1000 GB ÷ 31 days > 11 GB
    viewer = login(client, "vic")
    assert client.post("/api/sites/lte/override", json=raise_it, headers={"X-CSRF-Token": viewer}).status_code == 403
    assert client.post("/sites/lte/override", data={"monthly_budget": "40 GB", "csrf_token": viewer}).status_code == 403
    (site,) = client.get("/api/sites/budgets").json()
    assert (site["budget_bytes"], site["spent"]) == (10 * GB, True)

    headers = {"X-CSRF-Token": login(client, "olga")}
    assert client.post("/api/sites/lte/override", json=raise_it, headers=headers).status_code == 204
    (site,) = client.get("/api/sites/budgets").json()
    assert (site["budget_bytes"], site["spent"], site["held"]) == (1000 * GB, False, False)
    cap = {"daily_cap_bytes": 20 * GB}
    assert client.post("/api/agents/pi-a/override", json=cap, headers=headers).status_code == 204
    agent = client.get("/api/agents/pi-a/budget").json()
    assert (agent["daily_cap_bytes"], agent["left_today_bytes"]) == (20 * GB, 9 * GB)
    # a monthly budget is a site's; nonsense is refused like any invalid body
    for body in ({"monthly_budget_bytes": GB}, {"daily_cap_bytes": -1}, {"daily_cap_bytes": "5"}):
        assert client.post("/api/agents/pi-a/override", json=body, headers=headers).status_code == 422
    audit = client.get("/api/audit").json()
    assert [(a["user"], a["action"], a["target"]) for a in audit[:2]] == [
        ("olga", "override.set", "agent:pi-a"),
        ("olga", "override.set", "site:lte"),
    ]
    assert "monthly budget 931.3 GiB" in audit[1]["details"]
    # the page's form takes sizes with units; clearing the override brings the configured budget back
    form = {"monthly_budget": "12.5 GB", "csrf_token": headers["X-CSRF-Token"]}
    assert client.post("/sites/lte/override", data=form, follow_redirects=False).status_code == 303
    assert client.get("/api/sites/budgets").json()[0]["budget_bytes"] == 12_500_000_000
    assert 'id="ov-monthly-budget"' in client.get("/").text
    assert client.delete("/api/sites/lte/override", headers=headers).status_code == 204
    assert client.get("/api/sites/budgets").json()[0]["budget_bytes"] == 10 * GB


def test_the_budgets_table_form_changes_only_the_budget(engine: Engine, client: TestClient) -> None:
    now = datetime.now(UTC)
    put_agents(engine, [AgentSpec("pi-a", site="lte")], now)
    assert 'class="budget"' not in client.get("/").text  # the viewer (vic) gets no form
    csrf = login(client, "olga")
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/sites/lte/override", json={"paused": True}, headers=headers).status_code == 204
    assert '/sites/lte/budget"' in client.get("/").text
    form = {"csrf_token": csrf, "monthly_budget": "20 GB", "daily_cap": ""}
    assert client.post("/sites/lte/budget", data=form, follow_redirects=False).status_code == 303
    (override,) = client.get("/api/overrides").json()
    assert (override["paused"], override["monthly_budget_bytes"], override["daily_cap_bytes"]) == (True, 20 * GB, None)
    form = {"csrf_token": csrf, "monthly_budget": "", "daily_cap": "3 GB"}  # empty: unchanged
    assert client.post("/sites/lte/budget", data=form, follow_redirects=False).status_code == 303
    (override,) = client.get("/api/overrides").json()
    assert (override["monthly_budget_bytes"], override["daily_cap_bytes"]) == (20 * GB, 3 * GB)
    assert client.get("/api/sites/budgets").json()[0]["agent_daily_cap_bytes"] == 3 * GB
    form = {"csrf_token": csrf, "monthly_budget": "-", "daily_cap": ""}  # "-": as configured again
    assert client.post("/sites/lte/budget", data=form, follow_redirects=False).status_code == 303
    assert client.get("/api/sites/budgets").json()[0]["budget_bytes"] == 10 * GB
    bad = {"csrf_token": csrf, "monthly_budget": "lots"}
    assert client.post("/sites/lte/budget", data=bad, follow_redirects=False).status_code == 422
