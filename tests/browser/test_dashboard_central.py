"""The Central page in a real Chromium, under the Content-Security-Policy: central.js draws every chart from
/api/central; the agent page draws the agent's own measurements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from controller.central.readings import BrokerFigures, HostCounters, ProbeResult, host_figures, sample_row
from controller.store.central import add_sample
from tests.browser.conftest import RunningDashboard
from tests.browser.test_dashboard_browser import log_in
from tests.browser.test_dashboard_security import RECORD_VIOLATIONS, violations
from tests.integration.dashboard.seed import AgentSpec, put_agents

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
CHARTS = ("cpu", "disk-free", "disk-io", "network", "broker-clients", "broker-msgs", "s3-latency", "s3-errors")


def test_the_central_page_draws_its_charts(dashboard_server: RunningDashboard, browser_page: Any) -> None:
    page, url = browser_page, dashboard_server.url
    now = datetime.now(UTC)
    host = host_figures(
        HostCounters(0, 5, 100, 50, 0, 0, 0, 0, 5, 10), HostCounters(10, 25, 100, 40, 9, 9, 9, 9, 4, 10)
    )
    broker = BrokerFigures(connected=True, clients_connected=3, msgs_received_per_s=1.0, msgs_sent_per_s=2.0,
                           msgs_dropped_per_s=0.0, dropped_total=0, retained_count=6)  # fmt: skip
    with Session(dashboard_server.engine) as session:
        for minutes in range(10, 0, -1):
            probe = ProbeResult(
                ok=minutes != 5, put_s=0.01, get_s=0.01, delete_s=0.01, error="" if minutes != 5 else "x"
            )
            add_sample(session, "ctl-1", sample_row(now - timedelta(minutes=minutes), 15.0, host, broker, probe))
    own = {"mqtt_rtt_s": 0.01, "s3_ttfb_s": 0.02, "process_cpu_percent": 3.0, "process_rss_bytes": 40 << 20}
    put_agents(dashboard_server.engine, [AgentSpec("pi-01", extra=own)], now)
    page.add_init_script(RECORD_VIOLATIONS)

    log_in(page, url, "vic")
    page.click("header a:text('Central')")
    for chart in CHARTS:
        page.wait_for_selector(f"#chart-{chart} path", state="attached")  # a flat line has no height
    assert page.locator("#chart-cpu path").first.get_attribute("data-points") == "10"
    assert violations(page) == []

    page.goto(url + "/agents/pi-01")
    page.wait_for_selector("#chart-latency path", state="attached")
    assert "MQTT 10.0 ms" in page.inner_text("#f-latency")
    assert violations(page) == []
