from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from controller.policy import PolicyConfig
from dashboard.context import DashboardCounters
from dashboard.metrics import FleetCollector, LabelledCounter, MetricsPage
from dashboard.readmodel import Alert, FleetSnapshot, UploadTotals, fleet_totals
from tests.unit.dashboard.factories import NOW, assignment, row


def snapshot() -> FleetSnapshot:
    rows = [
        row(
            "pi-01",
            temperature_c=75.0,
            throughput_bps=1000.0,
            bytes_uploaded_total=5000,
            retries_total=3,
            backlog_eta_s=90.0,
        ),
        row("pi-02", online=False, site="barn", temperature_c=None, assignment=None),
        row("pi-03", assignment=assignment(paused=True, concurrency=0), throttled=0x4),
    ]
    limits = PolicyConfig()
    alerts = [Alert("pi-01", "hot", "pi-01 hot"), Alert("pi-02", "offline", "pi-02 offline"),
              Alert("pi-03", "throttled", "pi-03: throttled")]  # fmt: skip
    uploads = UploadTotals(files=2, original_bytes=300, stored_bytes=200, failures=1)
    return FleetSnapshot(rows=rows, totals=fleet_totals(rows, uploads, limits, alerts), alerts=alerts, at=NOW)


def scrape() -> str:
    registry = CollectorRegistry()
    registry.register(FleetCollector(snapshot))
    return generate_latest(registry).decode()


def test_fleet_gauges() -> None:
    text = scrape()
    for line in [
        'edgefleet_agents{state="online"} 2.0',
        'edgefleet_agents{state="offline"} 1.0',
        "edgefleet_fleet_throughput_bytes_per_second 2000.0",
        "edgefleet_hot_agents 1.0",
        "edgefleet_saved_today_bytes 100.0",
        'edgefleet_failures_today{kind="upload_failed"} 1.0',
        'edgefleet_alerts{kind="hot"} 1.0',
        'edgefleet_alerts{kind="offline"} 1.0',
        'edgefleet_alerts{kind="throttled"} 1.0',
    ]:
        assert line in text, line


def test_per_agent_gauges_and_counters() -> None:
    text = scrape()
    assert 'edgefleet_agent_temperature_celsius{agent="pi-01",site="garden"} 75.0' in text
    assert 'agent="pi-02"' in text
    assert 'edgefleet_agent_temperature_celsius{agent="pi-02"' not in text  # unknown: no sample rather than a fake 0
    assert 'edgefleet_agent_assigned_concurrency{agent="pi-02"' not in text
    assert 'edgefleet_agent_backlog_eta_seconds{agent="pi-01",site="garden"} 90.0' in text
    assert 'edgefleet_agent_backlog_eta_seconds{agent="pi-02"' not in text  # unknown: no sample
    assert 'edgefleet_agent_paused{agent="pi-03",site="garden"} 1.0' in text
    assert 'edgefleet_agent_up{agent="pi-02",site="barn"} 0.0' in text
    assert 'edgefleet_agent_uploaded_bytes_total{agent="pi-01",site="garden"} 5000.0' in text
    assert 'edgefleet_agent_retries_total{agent="pi-01",site="garden"} 3.0' in text
    assert "# TYPE edgefleet_agent_errors_total counter" in text


def test_metrics_page_is_kept_for_its_max_age() -> None:
    loads: list[int] = []

    def load() -> FleetSnapshot:
        loads.append(1)
        return snapshot()

    registry = CollectorRegistry()
    registry.register(FleetCollector(load))
    now = [100.0]
    page = MetricsPage(registry, max_age_s=5.0, clock=lambda: now[0])
    first = page.body()
    now[0] += 4.9
    assert page.body() is first
    assert len(loads) == 1
    now[0] += 0.1
    page.body()
    assert len(loads) == 2
    fresh = MetricsPage(registry, max_age_s=0.0, clock=lambda: now[0])
    fresh.body()
    fresh.body()
    assert len(loads) == 4


def test_the_controllers_thermal_step_is_a_gauge_when_there_is_an_assignment() -> None:
    text = scrape()
    assert 'edgefleet_agent_thermal_level{agent="pi-01",site="garden"} 0.0' in text
    assert 'edgefleet_agent_thermal_level{agent="pi-02"' not in text  # no assignment: unknown


def test_the_dashboards_counters_start_at_zero_and_have_no_created_series() -> None:
    registry = CollectorRegistry()
    counters = DashboardCounters.create(registry)
    text = generate_latest(registry).decode()
    for outcome in ("ok", "failed", "throttled"):
        assert f'edgefleet_dashboard_logins_total{{outcome="{outcome}"}} 0.0' in text
    for action in ("set", "clear"):
        assert f'edgefleet_dashboard_override_changes_total{{action="{action}"}} 0.0' in text
    assert "_created" not in text
    assert "# HELP edgefleet_dashboard_logins_total login attempts by outcome" in text
    counters.overrides.inc("set")
    counters.logins.inc("failed", 2)
    text = generate_latest(registry).decode()
    assert 'edgefleet_dashboard_override_changes_total{action="set"} 1.0' in text
    assert 'edgefleet_dashboard_logins_total{outcome="failed"} 2.0' in text
    assert counters.logins.value("ok") == 0


def test_a_counter_refuses_a_label_value_it_does_not_know() -> None:
    counter = LabelledCounter("edgefleet_test", "a test", "kind", ("a",))
    with pytest.raises(ValueError, match="unknown kind 'b'"):
        counter.inc("b")
