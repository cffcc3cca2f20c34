"""What the pages show, against a real database: both kinds of throttling, the decisive part of a reason,
the audit trail in words, the assignment history over the live stream, the icon and the counters."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dashboard.security import CONTENT_SECURITY_POLICY
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, put_agents
from tests.integration.dashboard.test_stream import events

pytestmark = pytest.mark.integration

HOT_REASON = (
    "concurrency 8 (max 8), part 16 MiB (link 6.0 MB/s); "
    "75.0 °C ≥ 73.3 °C (70.0 °C soft limit): compression 5 → 0, concurrency 8 → 4; "
    "share 3.2 MB/s of 12.5 MB/s uplink (site garden: 3 of 4 agents with backlog, weight 2)"
)


def text(html: str) -> str:
    """What a reader sees of some HTML: the text, with its spacing collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def cell(page: str, agent_id: str, css_class: str) -> str:
    row = page.split(f'id="agent-{agent_id}"', 1)[1].split("</tr>", 1)[0]
    match = re.search(rf'<td class="{css_class}"[^>]*>(.*?)</td>', row, re.S)
    assert match, row
    return text(match.group(0))


def test_the_fleet_table_names_both_kinds_of_throttling(app_client: TestClient, engine: Engine) -> None:
    put_agents(
        engine,
        [
            AgentSpec("pi-01"),
            AgentSpec("pi-02", temperature_c=75.0, thermal_level=2, reason=HOT_REASON),  # the controller throttles
            AgentSpec("pi-03", throttled=0x5, thermal_level=4, paused=True),  # so does the firmware
        ],
    )
    login(app_client, "vic")
    page = app_client.get("/").text
    assert ">Throttling</th>" in page
    assert cell(page, "pi-01", "throttling") == "firmware: ok controller: normal"
    assert cell(page, "pi-02", "throttling") == "firmware: ok controller: hot"
    assert cell(page, "pi-03", "throttling") == "firmware: under-voltage throttled controller: critical"


def test_the_reason_column_shows_the_decisive_clause_and_the_rest_on_hover(
    app_client: TestClient, engine: Engine
) -> None:
    put_agents(engine, [AgentSpec("pi-02", temperature_c=75.0, thermal_level=2, reason=HOT_REASON)])
    login(app_client, "vic")
    page = app_client.get("/").text
    assert cell(page, "pi-02", "reason") == "75.0 °C ≥ 73.3 °C: compression 5 → 0, concurrency 8 → 4 +2"
    title = re.search(r'<td class="reason" title="([^"]*)"', page.split('id="agent-pi-02"', 1)[1])
    assert title
    assert unescape(title.group(1)) == HOT_REASON
    agent = app_client.get("/agents/pi-02").text
    clauses = re.findall(r"<li>(.*?)</li>", agent.split('id="f-reason"', 1)[1].split("</dd>", 1)[0])
    assert [unescape(c) for c in clauses] == HOT_REASON.split("; ")


def test_the_audit_trail_reads_as_words(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    csrf = login(app_client, "olga")
    form = {"csrf_token": csrf, "paused": "true", "windows": "22:00-06:00", "max_concurrency": "1", "bandwidth_bps": ""}
    assert app_client.post("/agents/pi-01/override", data=form, follow_redirects=False).status_code == 303
    clear = {"csrf_token": csrf, "action": "clear"}
    assert app_client.post("/agents/pi-01/override", data=clear, follow_redirects=False).status_code == 303
    page = app_client.get("/audit").text
    rows = [text(r) for r in re.findall(r"<tr data-action.*?</tr>", page, re.S)]
    assert len(rows) == 2
    assert rows[0].endswith("olga cleared the override of agent pi-01")
    assert rows[1].endswith(
        "olga set the override of agent pi-01 pause; windows: 22:00-06:00; concurrency ≤ 1; no bandwidth cap"
    )
    assert "=" not in " ".join(rows)


@pytest.mark.timeout(60)
def test_the_agent_pages_assignment_history_follows_the_stream(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    login(app_client, "vic")
    with app_client.stream("GET", "/api/stream", params={"agent": "pi-01"}) as response:
        agent_events = (data for name, data in events(response.iter_lines()) if name == "agent")
        first = next(agent_events)
        assert 'data-version="1"' in first["history_html"]  # what the page may have missed while it connected
        put_agents(engine, [AgentSpec("pi-01", temperature_c=58.0)])  # same assignment: no history again
        same = next(agent_events)
        assert same["agent"]["temperature_c"] == 58.0
        assert "history_html" not in same
        put_agents(engine, [AgentSpec("pi-01", concurrency=1, reason="operator olga: concurrency cap 1")])
        changed = next(agent_events)
        history = changed["history_html"]
        assert history.index('data-version="2"') < history.index('data-version="1"')  # newest first
        assert "operator olga: concurrency cap 1" in history


def test_the_icon_is_served_before_login_under_the_same_policy(app_client: TestClient) -> None:
    icon = app_client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert icon.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'rel="icon" href="/favicon.ico"' in app_client.get("/login").text


def test_counters_show_zero_before_the_first_change(app_client: TestClient) -> None:
    text = app_client.get("/metrics").text
    assert 'edgefleet_dashboard_override_changes_total{action="set"} 0.0' in text
    assert 'edgefleet_dashboard_logins_total{outcome="ok"} 0.0' in text
    assert "_created" not in text


def test_the_time_to_drain_shows_on_the_fleet_table_the_agent_page_and_the_api(
    app_client: TestClient, engine: Engine
) -> None:
    put_agents(engine, [AgentSpec("pi-01", backlog_eta_s=5400.0), AgentSpec("pi-02")])
    login(app_client, "vic")
    page = app_client.get("/").text
    assert ">Drain</a></th>" in page
    assert cell(page, "pi-01", "num eta") == "1h 30m"
    assert cell(page, "pi-02", "num eta") == "–"  # unknown: nothing measured yet, or an older agent
    agent = app_client.get("/agents/pi-01").text
    assert text(agent.split('id="f-eta"', 1)[1].split("</dd>", 1)[0]).endswith("1h 30m")
    assert "Time to drain" in agent
    rows = {r["agent_id"]: r for r in app_client.get("/api/agents").json()}
    assert (rows["pi-01"]["backlog_eta_s"], rows["pi-02"]["backlog_eta_s"]) == (5400.0, None)
    by_eta = app_client.get("/?sort=backlog_eta_s&desc=true").text
    assert by_eta.index('id="agent-pi-01"') < by_eta.index('id="agent-pi-02"')


def alert_items(page: str) -> list[tuple[str, str]]:
    """(class, text) of each item of the page's alert list."""
    box = page.split('<div id="alerts">', 1)[1].split("</div>", 1)[0]
    return [
        (m.group(2), text(m.group(3))) for m in re.finditer(r'<(a|span) class="([^"]*)"[^>]*>(.*?)</\1>', box, re.S)
    ]


def test_the_alert_list_shows_the_controllers_open_and_recently_resolved_alerts(
    app_client: TestClient, engine: Engine
) -> None:
    put_agents(
        engine,
        [
            AgentSpec("pi-01", temperature_c=75.0),
            AgentSpec("pi-02", extra={"disk_bytes": 32 << 30, "disk_free_bytes": 1}),
        ],
    )
    put_agents(engine, [AgentSpec("pi-01", temperature_c=50.0)])  # resolves pi-01's alert
    login(app_client, "vic")
    items = alert_items(app_client.get("/").text)
    assert items[0][1] == "pi-02 disk 0% free (0.0 GiB)"
    assert "alert-disk_low" in items[0][0]
    assert "alert-critical" in items[0][0]
    assert items[1] == ("alert alert-warning alert-hot alert-resolved", "pi-01 75.0 °C ≥ 70 °C soft limit")
    assert [i[1] for i in alert_items(app_client.get("/agents/pi-01").text)] == ["pi-01 75.0 °C ≥ 70 °C soft limit"]
    fleet = app_client.get("/api/fleet").json()
    assert [(a["agent_id"], a["kind"], a["severity"]) for a in fleet["alerts"]] == [("pi-02", "disk_low", "critical")]
    assert fleet["totals"]["alerts"] == 1
