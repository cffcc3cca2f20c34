"""The whole path in a real headless Chromium: simulated Pis → MQTT → controller → database → dashboard,
and an operator's override back through the controller's policy to a running simulated agent.

Needs the controller and the simulator (skipped when either is not importable); the dashboard's own
browser test (test_dashboard_browser.py) works without them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import RunningDashboard
from tests.browser.test_dashboard_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(180)]

AGENTS = 3


@pytest.fixture
def live_fleet(mqtt_broker: Any, tmp_path: Path, start_dashboard: Any) -> Iterator[tuple[RunningDashboard, list[str]]]:
    controller_app = pytest.importorskip("controller.service.app")
    controller_config = pytest.importorskip("controller.config")
    sim = pytest.importorskip("edgefleet.sim.fleet")
    from fleet_base.mqtt_url import MqttUrl

    database_url = f"sqlite:///{tmp_path / 'controller.db'}"
    dashboard = start_dashboard(database_url)
    controller = controller_app.Controller(
        controller_config.parse_config(
            {
                "database_url": database_url,
                "tick_seconds": 0.3,
                "flush_interval_s": 0.05,
                "offline_after_s": 30,
                "mqtt": {"url": mqtt_broker.url_for("controller")},
            },
            env={},
        )
    ).start()
    assert controller.link.wait_connected(10)
    ids = sim.agent_ids(AGENTS, "brw")
    for agent_id in ids:
        if agent_id not in mqtt_broker.users:
            mqtt_broker.add_user(agent_id, password="sim-secret")
    options = sim.FleetOptions(
        agents=AGENTS,
        mqtt_url=MqttUrl.parse(mqtt_broker.url_for(ids[0])),
        root=tmp_path / "sim",
        agent_password="sim-secret",
        id_prefix="brw",
        site="browser-site",
        telemetry_interval_s=0.5,
    )
    fleet = sim.Fleet(options)
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,), name="sim-fleet", daemon=True)
    runner.start()
    yield dashboard, ids
    stop.set()
    runner.join(timeout=30)
    controller.stop()


def test_override_reaches_a_running_simulated_agent(live_fleet: Any, browser_page: Any) -> None:
    dashboard, ids = live_fleet
    page = browser_page
    log_in(page, dashboard.url, "olga")
    for agent_id in ids:  # they appear live, as the simulated Pis report
        page.wait_for_selector(f"#agent-{agent_id}", timeout=30_000)
    target = ids[0]
    page.click(f"#agent-{target} a")
    page.wait_for_selector("#f-applied", timeout=30_000)  # the agent runs the controller's assignment
    page.select_option("#ov-paused", "true")
    page.click("#ov-apply")
    page.wait_for_selector("#flash >> text=Override saved")
    # the controller's next tick pauses it and says why; the agent reports the new version back
    page.wait_for_selector("#f-reason >> text=operator", timeout=30_000)
    page.wait_for_selector("#f-assignment >> text=paused", timeout=30_000)
    page.wait_for_selector("#f-applied", timeout=30_000)
    assert f"set the override of agent {target}" in page.locator("#audit tbody tr").first.inner_text()
