"""The central node on the dashboard against a real database (SQLite and PostgreSQL): the Central page and its
JSON from the controller's central_sample rows, the agents' own measurements on their page, API and /metrics,
and the per-file upload duration histogram from the stored upload events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from controller.central.readings import BrokerFigures, HostCounters, ProbeResult, host_figures, sample_row
from controller.store.central import add_sample
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, MiB, put_agents, put_event

pytestmark = pytest.mark.integration

HOST = host_figures(
    HostCounters(0.0, 1.0, 100, 100, 0, 0, 0, 0, 1, 1),
    HostCounters(10.0, 37.5, 8 << 30, 2 << 30, 10 * MiB, 20 * MiB, 30 * MiB, 40 * MiB, 50 << 30, 100 << 30),
)
BROKER = BrokerFigures(connected=True, clients_connected=42, msgs_received_per_s=3.5, msgs_sent_per_s=7.0,
                       msgs_dropped_per_s=0.0, dropped_total=0, retained_count=84)  # fmt: skip


def put_samples(engine: Engine, controller_id: str, ats: list[datetime], probe: ProbeResult) -> None:
    with Session(engine) as session:
        for at in ats:
            add_sample(session, controller_id, sample_row(at, 15.0, HOST, BROKER, probe))


def test_the_central_api_and_page(app_client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    ok = ProbeResult(ok=True, put_s=0.01, get_s=0.02, delete_s=0.03)
    put_samples(engine, "ctl-2", [now - timedelta(minutes=30)], ok)
    put_samples(engine, "ctl-1", [now - timedelta(minutes=m) for m in (50, 20, 1)], ok)
    put_samples(engine, "ctl-1", [now - timedelta(hours=3)], ok)  # outside the default range
    login(app_client, "vic")

    series = app_client.get("/api/central").json()
    assert series["controller_id"] == "ctl-1"
    assert series["controllers"] == ["ctl-1", "ctl-2"]
    assert len(series["points"]) == 3
    last = series["points"][-1]
    assert last["cpu_percent"] == 37.5
    assert last["disk_read_bps"] == pytest.approx(MiB)
    assert (last["broker_clients"], last["broker_retained"], last["s3_probes"]) == (42, 84, 1)
    assert last["s3_probe_latency_s"] == pytest.approx(0.06)
    other = app_client.get("/api/central", params={"controller": "ctl-2", "range": "6h"}).json()
    assert len(other["points"]) == 1
    assert app_client.get("/api/central", params={"range": "2y"}).status_code == 422

    page = app_client.get("/central")
    assert page.status_code == 200
    assert 'id="chart-broker-msgs"' in page.text
    assert "42 clients" in page.text
    assert "60.0 ms (put + get + delete)" in page.text
    assert 'href="?controller=ctl-2' in page.text
    assert 'href="http://testserver/central">Central</a>' in app_client.get("/").text  # in the navigation


def test_a_failing_probe_and_an_empty_range_are_said(app_client: TestClient, engine: Engine) -> None:
    login(app_client, "vic")
    assert "has not reported" in app_client.get("/central").text
    put_samples(engine, "ctl-1", [datetime.now(UTC)], ProbeResult(ok=False, error="put: MaxRetryError: refused"))
    page = app_client.get("/central").text
    assert "failing" in page
    assert "put: MaxRetryError: refused" in page


def test_the_errors_agents_report_are_on_the_page(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01", extra={"errors_total": 4, "retries_total": 9}), AgentSpec("pi-02")])
    put_event(engine, "pi-01", "upload_failed")
    login(app_client, "vic")
    assert "1 failed uploads today; 4 upload errors and 10 retries in all" in app_client.get("/central").text


def test_the_central_api_needs_login(app_client: TestClient) -> None:
    assert app_client.get("/api/central").status_code == 401


def test_agents_own_measurements_on_page_api_and_metrics(app_client: TestClient, engine: Engine) -> None:
    own = {"mqtt_rtt_s": 0.0123, "s3_ttfb_s": 0.045, "process_cpu_percent": 7.5, "process_rss_bytes": 48 * MiB}
    put_agents(engine, [AgentSpec("pi-01", extra=own), AgentSpec("pi-02")])
    login(app_client, "vic")
    row = app_client.get("/api/agents/pi-01").json()["row"]
    assert {k: row[k] for k in own} == own
    assert app_client.get("/api/agents/pi-02").json()["row"]["mqtt_rtt_s"] is None
    page = app_client.get("/agents/pi-01").text
    assert "MQTT 12.3 ms, S3 first byte 45.0 ms" in page
    assert "CPU 7.5 %, memory 48.0 MiB" in page
    assert 'id="chart-latency"' in page
    text = app_client.get("/metrics").text
    assert 'edgefleet_agent_mqtt_rtt_seconds{agent="pi-01",site="garden"} 0.0123' in text
    assert 'edgefleet_agent_s3_ttfb_seconds{agent="pi-01",site="garden"} 0.045' in text
    assert 'edgefleet_agent_process_resident_bytes{agent="pi-01",site="garden"} 5.0331648e+07' in text
    assert 'edgefleet_agent_mqtt_rtt_seconds{agent="pi-02"' not in text  # not measured: no sample


def test_upload_durations_are_a_histogram(app_client: TestClient, engine: Engine) -> None:
    for seconds in (0.5, 12.0, 45.0, 45.0, 4000.0):
        put_event(engine, "pi-01", "upload_completed", duration_s=seconds)
    put_event(engine, "pi-01", "upload_completed", duration_s=0.0, reason="already stored")  # no upload: left out
    put_event(engine, "pi-01", "upload_failed", duration_s=30.0)
    text = app_client.get("/metrics").text
    assert 'edgefleet_upload_duration_seconds_bucket{le="1.0"} 1.0' in text
    assert 'edgefleet_upload_duration_seconds_bucket{le="15.0"} 2.0' in text
    assert 'edgefleet_upload_duration_seconds_bucket{le="60.0"} 4.0' in text
    assert 'edgefleet_upload_duration_seconds_bucket{le="3600.0"} 4.0' in text
    assert 'edgefleet_upload_duration_seconds_bucket{le="+Inf"} 5.0' in text
    assert "edgefleet_upload_duration_seconds_count 5.0" in text
    assert "edgefleet_upload_duration_seconds_sum 4102.5" in text
