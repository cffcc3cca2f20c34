"""A real Prometheus (Debian's) scrapes the controller and the dashboard and evaluates the shipped alert rules;
the series and a firing rule are read back through its HTTP API. ``promtool`` checks and unit-tests the rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.service.app import Controller
from edgefleet.localservices.process import free_port
from tests.browser.conftest import RunningDashboard, start_dashboard
from tests.integration.controller.fakes import FakeAgent
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

RULES_DIR = Path(__file__).resolve().parents[3] / "ops" / "prometheus"
RULES = RULES_DIR / "edgefleet-rules.yml"
__all__ = ["start_dashboard"]  # the fixture, shared with the browser tests


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: scripts/bootstrap.sh installs the Debian package prometheus"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_promtool_checks_the_shipped_rules_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    tested = promtool("test", "rules", "edgefleet-rules.test.yml", cwd=RULES_DIR)
    assert tested.returncode == 0, tested.stdout + tested.stderr


class Prometheus:
    def __init__(self, directory: Path, targets: dict[str, str]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: scripts/bootstrap.sh installs the Debian package prometheus"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        config.write_text(  # JSON is YAML
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
                    ],
                }
            )
        )
        self.log = (directory / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def ready(self) -> bool:
        assert self.process.poll() is None, "prometheus exited (see prometheus.log in the test's directory)"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: dict[str, str]) -> Prometheus:
        server = Prometheus(tmp_path, targets)
        started.append(server)
        wait_for(server.ready, 60, "prometheus ready")
        return server

    yield start
    for server in started:
        server.stop()


def value(prom: Prometheus, promql: str) -> float | None:
    result = prom.query(promql)
    return float(result[0]["value"][1]) if result else None


@pytest.mark.timeout(300)
def test_prometheus_scrapes_the_controller_and_the_dashboard_and_evaluates_the_rules(
    tmp_path: Path,
    start_controller: Callable[..., Controller],
    start_dashboard: Callable[[str], RunningDashboard],
    make_agent: Callable[..., FakeAgent],
    prometheus_factory: Callable[[dict[str, str]], Prometheus],
) -> None:
    database_url = f"sqlite:///{tmp_path / 'central.db'}"
    controller = start_controller(database_url, metrics={"listen": "127.0.0.1:0"}, alerts={"evaluate_interval_s": 0.5})
    assert controller.health is not None
    dashboard = start_dashboard(database_url)
    agent_id = f"pi-{uuid.uuid4().hex[:8]}"
    agent = make_agent(agent_id).connect()
    agent.telemetry(temperature_c=75.0)
    prom = prometheus_factory(
        {
            "edgefleet-controller": f"127.0.0.1:{controller.health.port}",
            "edgefleet-dashboard": dashboard.url.removeprefix("http://"),
        }
    )

    def ask(promql: str) -> Callable[[], float | None]:
        return lambda: value(prom, promql)

    assert wait_for(ask('up{job="edgefleet-controller"} == 1'), 90, "the controller scraped") == 1
    assert wait_for(ask('up{job="edgefleet-dashboard"} == 1'), 90, "the dashboard scraped") == 1
    assert wait_for(ask("edgefleet_controller_mqtt_connected"), 90, "the MQTT state") == 1
    lag = 'edgefleet_controller_ingest_lag_seconds_count{stage="sent_to_received"} > 0'
    assert wait_for(ask(lag), 90, "the ingest lag histogram") >= 1
    assert wait_for(ask('edgefleet_controller_thread_alive{thread="alerts"}'), 90, "thread health") == 1
    temperature = f'edgefleet_agent_temperature_celsius{{agent="{agent_id}"}}'
    assert wait_for(ask(temperature), 90, "the agent's temperature from the dashboard") == 75.0
    assert wait_for(ask('edgefleet_alerts{kind="hot"} > 0'), 90, "the controller's stored alert, exported") >= 1
    firing = f'ALERTS{{alertname="EdgefleetAgentHot", alertstate="firing", agent="{agent_id}"}}'
    assert wait_for(ask(firing), 90, "the shipped rule firing in Prometheus") == 1
