"""/healthz and /metrics from a ControllerStatus (pure rendering; the HTTP round trip is in the integration tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.service.health import ControllerStatus, HealthServer
from controller.service.inbox import Received
from controller.service.metrics import ControllerMetrics
from controller.service.supervisor import WorkerStatus
from controller.store.agent_writes import IngestBatch
from fleet_protocol.messages import Telemetry

ALIVE = {"ingest": WorkerStatus(True), "tick": WorkerStatus(True, restarts=2), "supervisor": WorkerStatus(True)}


def status(**kw: object) -> ControllerStatus:
    fields: dict[str, object] = {"controller_id": "ctl-1", "threads": ALIVE, "mqtt_connected": True}
    fields.update(kw)
    return ControllerStatus(**fields)  # type: ignore[arg-type]


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("threads", "connected", "problems"),
    [
        (ALIVE, True, []),
        (ALIVE, False, ["MQTT is not connected"]),
        ({**ALIVE, "tick": WorkerStatus(False, 3, "ThreadKill: x")}, True, ["thread tick is not running"]),
        (
            {**ALIVE, "ingest": WorkerStatus(False), "supervisor": WorkerStatus(False)},
            False,
            ["thread ingest is not running", "thread supervisor is not running", "MQTT is not connected"],
        ),
    ],
)
def test_healthz_is_200_only_when_every_thread_runs_and_mqtt_is_connected(
    threads: dict[str, WorkerStatus], connected: bool, problems: list[str]
) -> None:
    endpoint = HealthServer(("127.0.0.1", 0), lambda: status(threads=threads, mqtt_connected=connected))
    code, content_type, body = endpoint.respond("/healthz")
    detail = json.loads(body)
    assert code == (503 if problems else 200)
    assert content_type == "application/json"
    assert detail["problems"] == problems
    assert detail["status"] == ("unhealthy" if problems else "ok")
    assert detail["threads"]["tick"]["restarts"] == threads["tick"].restarts
    assert detail["mqtt_connected"] is connected


def test_metrics_report_messages_rejects_by_reason_restarts_and_liveness() -> None:
    current = status(
        received=10,
        stored=7,
        rejected_by={"telemetry:PayloadError": 2, "events:Unstorable": 1},
        dead_lettered=1,
        deferred=4,
        site_mismatches=5,
        ticks=99,
        threads={**ALIVE, "ingest": WorkerStatus(False, 1)},
        mqtt_connected=False,
        loop_errors={"ingest": 3},
        unknown_event_kinds={"battery_low": 6},
    )
    endpoint = HealthServer(("127.0.0.1", 0), lambda: current)
    code, content_type, body = endpoint.respond("/metrics")
    assert code == 200
    assert content_type.startswith("text/plain")
    got = samples(body)
    assert got["edgefleet_controller_messages_received_total", ()] == 10
    assert got["edgefleet_controller_messages_stored_total", ()] == 7
    assert got["edgefleet_controller_messages_rejected_total", (("reason", "telemetry:PayloadError"),)] == 2
    assert got["edgefleet_controller_messages_rejected_total", (("reason", "events:Unstorable"),)] == 1
    assert got["edgefleet_controller_messages_dead_lettered_total", ()] == 1
    assert got["edgefleet_controller_messages_deferred_total", ()] == 4
    assert got["edgefleet_controller_birth_site_mismatches_total", ()] == 5
    assert got["edgefleet_controller_ticks_total", ()] == 99
    assert got["edgefleet_controller_thread_restarts_total", (("thread", "ingest"),)] == 1
    assert got["edgefleet_controller_thread_restarts_total", (("thread", "tick"),)] == 2
    assert got["edgefleet_controller_thread_alive", (("thread", "ingest"),)] == 0
    assert got["edgefleet_controller_thread_alive", (("thread", "tick"),)] == 1
    assert got["edgefleet_controller_mqtt_connected", ()] == 0
    assert got["edgefleet_controller_loop_errors_total", (("thread", "ingest"),)] == 3
    assert got["edgefleet_controller_events_unknown_kind_total", (("kind", "battery_low"),)] == 6


def test_other_paths_are_404_and_a_query_string_is_ignored() -> None:
    endpoint = HealthServer(("127.0.0.1", 0), lambda: status())
    assert endpoint.respond("/")[0] == 404
    assert endpoint.respond("/healthz?verbose=1")[0] == 200


def test_metrics_report_conflicts_aborts_reconnects_and_alerts() -> None:
    current = status(
        version_conflicts=4,
        janitor_aborts=2,
        mqtt_connects=3,
        alerts_firing={"critical": 1},
        alert_rounds=7,
        alert_rule_failures=1,
        notifications={"delivered": 5, "failed": 2},
    )
    got = samples(HealthServer(("127.0.0.1", 0), lambda: current).respond("/metrics")[2])
    assert got["edgefleet_controller_version_conflicts_total", ()] == 4
    assert got["edgefleet_controller_janitor_aborts_total", ()] == 2
    assert got["edgefleet_controller_mqtt_reconnects_total", ()] == 2  # connects after the first
    assert got["edgefleet_controller_alerts_firing", (("severity", "critical"),)] == 1
    assert got["edgefleet_controller_alerts_firing", (("severity", "warning"),)] == 0
    assert got["edgefleet_controller_alert_evaluations_total", ()] == 7
    assert got["edgefleet_controller_alert_rule_failures_total", ()] == 1
    assert got["edgefleet_controller_alert_notifications_total", (("outcome", "delivered"),)] == 5
    assert got["edgefleet_controller_alert_notifications_total", (("outcome", "given_up"),)] == 0


def test_histograms_of_ingest_lag_ticks_and_database_time() -> None:
    metrics = ControllerMetrics()
    sent = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    batch = IngestBatch()
    message = Telemetry(agent_id="pi-01", seq=1, sent_at=sent)
    received = sent + timedelta(seconds=0.3)
    batch.telemetry.append((message, received))
    batch.raw.append(Received("t", b"", received.timestamp(), None))
    metrics.stored(batch, received.timestamp() + 0.2)
    metrics.tick.labels("full").observe(0.04)
    with metrics.timed("ingest_batch"):
        pass
    got = samples(HealthServer(("127.0.0.1", 0), lambda: status(), metrics.registry).respond("/metrics")[2])
    lag = "edgefleet_controller_ingest_lag_seconds"
    assert got[f"{lag}_count", (("stage", "sent_to_received"),)] == 1
    assert got[f"{lag}_sum", (("stage", "sent_to_received"),)] == pytest.approx(0.3)
    assert got[f"{lag}_sum", (("stage", "received_to_stored"),)] == pytest.approx(0.2)
    assert got[f"{lag}_sum", (("stage", "sent_to_stored"),)] == pytest.approx(0.5)
    assert got[f"{lag}_bucket", (("le", "0.25"), ("stage", "sent_to_received"))] == 0
    assert got[f"{lag}_bucket", (("le", "0.5"), ("stage", "sent_to_received"))] == 1
    assert got["edgefleet_controller_tick_duration_seconds_count", (("kind", "full"),)] == 1
    assert got["edgefleet_controller_tick_duration_seconds_count", (("kind", "hot"),)] == 0
    assert got["edgefleet_controller_database_seconds_count", (("operation", "ingest_batch"),)] == 1
    assert got["edgefleet_controller_messages_received_total", ()] == 0  # the status collector is there too
