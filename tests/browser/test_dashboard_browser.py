"""The dashboard in a real headless Chromium: log in, watch agents appear and change live, override, see it audited.

The agents are written into the controller's database by the test (as the controller would); no reload
happens between the changes and the assertions, so what appears came over the live stream.
Set ``EDGEFLEET_SCREENSHOT=/tmp/fleet.png`` to keep a screenshot of the fleet page.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from controller.store import repo
from tests.browser.conftest import RunningDashboard
from tests.integration.dashboard.seed import PASSWORDS, AgentSpec, MiB, put_agents, put_event, put_history

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WARM_REASON = (
    "concurrency 8 (max 8), part 16 MiB (link 6.0 MB/s); 71.0 °C ≥ 70.0 °C soft limit: compression 5 → 1; "
    "share 3.2 MB/s of 12.5 MB/s uplink (site garden: 3 of 4 agents with backlog, weight 2)"
)
PAUSED_REASON = (
    "concurrency 8 (max 8), part 16 MiB (link 6.0 MB/s); firmware reports throttled: paused; "
    "share 6.2 MB/s of 12.5 MB/s uplink (site barn: 1 of 2 agents with backlog, weight 1)"
)


def log_in(page: Any, url: str, user: str) -> None:
    page.goto(url + "/")
    page.wait_for_url("**/login?next=*")
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_live_fleet_override_and_audit(dashboard_server: RunningDashboard, browser_page: Any, tmp_path: Path) -> None:
    page, url, engine = browser_page, dashboard_server.url, dashboard_server.engine
    now = datetime.now(UTC)
    put_history(engine, AgentSpec("pi-01"), samples=60, every=timedelta(seconds=30), end=now - timedelta(seconds=1))
    put_agents(engine, [AgentSpec("pi-01"), AgentSpec("pi-02", site="barn", temperature_c=61.0)], now)
    put_event(engine, "pi-01", "upload_completed", file="dawn.wav", original_bytes=512 * MiB, stored_bytes=301 * MiB)

    log_in(page, url, "olga")
    page.wait_for_selector("#live.on")
    assert page.locator("#fleet tbody tr").count() == 2
    page.evaluate("window.__sameDocument = true")

    # new agent and a hot one: they show without a reload
    hot = AgentSpec("pi-03", site="barn", temperature_c=83.4, throttled=0x4, thermal_level=4, reason=PAUSED_REASON)
    put_agents(engine, [hot])
    page.wait_for_selector("#agent-pi-03")
    page.wait_for_selector("#alerts .alert-critical >> text=83.4 °C")
    page.wait_for_selector("#alerts .alert-throttled")
    # both kinds of throttling, named: the Pi's firmware and the controller's thermal step
    assert page.locator("#fleet th", has_text="Throttling").count() == 1
    assert page.locator("#agent-pi-03 td.throttling").inner_text().split("\n") == [
        "firmware: throttled",
        "controller: critical",
    ]
    assert page.locator("#agent-pi-01 td.throttling").inner_text().split("\n") == [
        "firmware: ok",
        "controller: normal",
    ]
    # the reason that decides, the whole of it on hover
    reason = page.locator("#agent-pi-03 td.reason")
    assert reason.inner_text() == "firmware reports throttled: paused +2"
    assert reason.get_attribute("title") == PAUSED_REASON
    put_agents(engine, [AgentSpec("pi-02", site="barn", online=False)])
    page.wait_for_selector("#agent-pi-02.offline")
    page.wait_for_selector("#alerts .alert-offline >> text=pi-02 is offline")
    assert page.locator("#t-online").inner_text() == "2 / 3"
    assert page.evaluate("window.__sameDocument") is True

    # sort by temperature (hottest first) and filter, on the server
    page.click("th[data-sort=temperature_c] a")
    page.wait_for_url("**sort=temperature_c**")
    assert page.locator("#fleet tbody tr").first.get_attribute("id") == "agent-pi-03"
    page.fill("#filter", "barn")
    page.press("#filter", "Enter")
    page.wait_for_url("**q=barn**")
    assert page.locator("#fleet tbody tr").count() == 2
    page.goto(url + "/")
    page.wait_for_selector("#live.on")
    shot = Path(os.environ.get("EDGEFLEET_SCREENSHOT") or tmp_path / "dashboard.png")
    page.screenshot(path=str(shot), full_page=True)

    # the agent page: charts drawn from the history, uploads listed
    page.click("#agent-pi-01 a")
    page.wait_for_url(url + "/agents/pi-01")
    page.wait_for_selector("#chart-temperature path.series[data-points]")
    page.evaluate("window.__sameDocument = true")
    series = page.locator("#chart-temperature path.series")
    assert int(series.get_attribute("data-points")) >= 60
    # 30 min of samples in the 1 h range: the chart starts at the first sample, at the left axis (x = 52)
    first_x = float(series.get_attribute("d").removeprefix("M").split(",")[0])
    assert abs(first_x - 52) < 2, first_x
    assert page.locator("#uploads >> text=dawn.wav").count() == 1
    assert page.locator("#assignments tbody tr").count() == 1
    # the controller throttles it: header, reason and assignment history follow without a reload
    put_agents(engine, [AgentSpec("pi-01", temperature_c=72.0, thermal_level=1, reason=WARM_REASON)])
    page.wait_for_selector("#f-temp >> text=72.0 °C")
    page.wait_for_selector("#f-throttle >> text=controller: warm")
    page.wait_for_selector("#assignments tr[data-version='2'] >> text=71.0 °C ≥ 70.0 °C soft limit")
    assert page.locator("#f-reason li").count() == 3
    assert page.evaluate("window.__sameDocument") is True

    # an override, through the form, recorded in the audit trail
    page.select_option("#ov-paused", "true")
    page.fill("#ov-concurrency", "1")
    page.fill("#ov-windows", "22:00-06:00")
    page.click("#ov-apply")
    page.wait_for_selector("#flash >> text=Override saved")
    assert "paused; windows 22:00-06:00; concurrency ≤ 1" in page.locator("#f-override").inner_text()
    audit_row = page.locator("#audit tbody tr").first.inner_text()
    assert "olga" in audit_row
    assert "set the override of agent pi-01" in audit_row
    assert "pause; windows: 22:00-06:00; concurrency ≤ 1; no bandwidth cap" in audit_row
    with Session(engine) as session:
        (override,) = repo.list_overrides(session)
        assert (override.paused, override.concurrency_cap, override.windows) == (True, 1, ["22:00-06:00"])
        (entry,) = repo.list_audit(session)
        assert (entry.who, entry.action, entry.target) == ("olga", "override.set", "agent:pi-01")


def test_viewer_sees_no_override_form(dashboard_server: RunningDashboard, browser_page: Any) -> None:
    put_agents(dashboard_server.engine, [AgentSpec("pi-01")])
    log_in(browser_page, dashboard_server.url, "vic")
    browser_page.goto(dashboard_server.url + "/agents/pi-01")
    browser_page.wait_for_selector("#now-facts")
    assert browser_page.locator("#override-form").count() == 0
