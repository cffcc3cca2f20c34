"""The Content-Security-Policy in a real Chromium: every page and Swagger UI work under it, nothing is blocked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import RunningDashboard
from tests.browser.test_dashboard_browser import log_in
from tests.integration.dashboard.seed import AgentSpec, put_agents, put_history

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Recorded in the page before any of its own scripts run (Playwright's init scripts are not subject to the CSP).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def violations(page: Any) -> list[str]:
    found: list[str] = page.evaluate("window.__csp")
    return found


def test_pages_and_swagger_ui_run_under_the_csp(dashboard_server: RunningDashboard, browser_page: Any) -> None:
    page, url = browser_page, dashboard_server.url
    now = datetime.now(UTC)
    put_history(dashboard_server.engine, AgentSpec("pi-01"), samples=20, every=timedelta(minutes=1), end=now)
    put_agents(dashboard_server.engine, [AgentSpec("pi-01"), AgentSpec("pi-02", site="barn")], now)
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)

    log_in(page, url, "olga")
    page.wait_for_selector("#live.on")  # live.js ran and the stream is connected
    assert violations(page) == []
    page.select_option("#site-select", "barn")  # fleet.js points the site form at the chosen site
    assert page.get_attribute("#override-form", "action") == "/sites/barn/override"

    page.goto(url + "/agents/pi-01")
    page.wait_for_selector("#chart-temperature path")  # charts.js drew from the telemetry API
    assert violations(page) == []

    page.goto(url + "/agents/nobody")  # the error page
    page.wait_for_selector("#error-detail")
    assert violations(page) == []

    page.goto(url + "/docs")
    page.wait_for_selector('.opblock-summary-path[data-path="/api/fleet"]')  # Swagger UI rendered the OpenAPI
    assert page.locator(".opblock").count() >= 15
    assert violations(page) == []
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.reload()
    page.wait_for_selector(".opblock")
    assert requested
    assert all(r.startswith(url) for r in requested), requested  # nothing from a CDN
    assert violations(page) == []
    assert console == []

    # the policy is enforced, and the recorder above sees it: an injected inline script is blocked
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; "
        "document.body.appendChild(s); }"
    )
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None
    assert violations(page)[0].startswith("script-src")
