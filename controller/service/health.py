"""The controller's own HTTP endpoint (``[metrics] listen``): ``/healthz`` and Prometheus ``/metrics``.

A thin adapter: ``Controller.status()`` gives a frozen ``ControllerStatus``; ``/healthz`` answers 200 when
every supervised thread is alive and MQTT is connected, else 503, with the detail as JSON either way;
``/metrics`` renders the same status with prometheus_client (a collector that reads the status at scrape time),
plus the histograms of ``controller.service.metrics`` when given their registry: no module-level metrics.
Every series is listed in docs/controller.md ("Metrics").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.service.supervisor import WorkerStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerStatus:
    controller_id: str
    threads: Mapping[str, WorkerStatus]
    mqtt_connected: bool
    received: int = 0
    stored: int = 0
    rejected_by: Mapping[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    deferred: int = 0
    site_mismatches: int = 0
    #: events of kinds this release does not know (stored), by kind
    unknown_event_kinds: Mapping[str, int] = field(default_factory=dict)
    queue: int = 0
    ticks: int = 0
    tick_errors: int = 0
    policy_errors: int = 0
    published: int = 0
    #: rounds of a loop that raised and were skipped, by thread
    loop_errors: Mapping[str, int] = field(default_factory=dict)
    version_conflicts: int = 0
    janitor_aborts: int = 0
    #: MQTT connects (and subscriptions) of the session connection: the first one, then each reconnect
    mqtt_connects: int = 0
    #: alerts firing now (of this controller's scopes), by severity; rounds; agents whose rules failed
    alerts_firing: Mapping[str, int] = field(default_factory=dict)
    alert_rounds: int = 0
    alert_rule_failures: int = 0
    #: webhook notifications: delivered, failed attempts (retried), given up
    notifications: Mapping[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        found = [f"thread {name} is not running" for name, t in sorted(self.threads.items()) if not t.alive]
        if not self.mqtt_connected:
            found.append("MQTT is not connected")
        return found

    def health(self) -> dict[str, Any]:
        return {
            "status": "unhealthy" if self.problems else "ok",
            "controller_id": self.controller_id,
            "problems": self.problems,
            "mqtt_connected": self.mqtt_connected,
            "threads": {
                name: {"alive": t.alive, "restarts": t.restarts, "last_error": t.last_error}
                for name, t in sorted(self.threads.items())
            },
        }


_COUNTERS: tuple[tuple[str, str, Callable[[ControllerStatus], int]], ...] = (
    ("edgefleet_controller_messages_received", "MQTT messages received", lambda s: s.received),
    ("edgefleet_controller_messages_stored", "valid messages stored", lambda s: s.stored),
    (
        "edgefleet_controller_messages_dead_lettered",
        "valid messages the database refused for their data (kept as dead letters, acknowledged)",
        lambda s: s.dead_lettered,
    ),
    (
        "edgefleet_controller_messages_deferred",
        "messages not stored while the database was away (not acknowledged: delivered again on a reconnect)",
        lambda s: s.deferred,
    ),
    (
        "edgefleet_controller_birth_site_mismatches",
        "births naming another site than the provisioned one (the provisioned site applies)",
        lambda s: s.site_mismatches,
    ),
    ("edgefleet_controller_ticks", "full policy ticks completed", lambda s: s.ticks),
    ("edgefleet_controller_tick_errors", "policy ticks that failed (retried next tick)", lambda s: s.tick_errors),
    (
        "edgefleet_controller_policy_errors",
        "policy runs that raised (the agents at fault are left out of that tick)",
        lambda s: s.policy_errors,
    ),
    ("edgefleet_controller_assignments_published", "assignments published", lambda s: s.published),
    (
        "edgefleet_controller_version_conflicts",
        "assignment commits that met a newer version (another controller's) and were decided again",
        lambda s: s.version_conflicts,
    ),
    (
        "edgefleet_controller_janitor_aborts",
        "stale multipart uploads aborted by the janitor",
        lambda s: s.janitor_aborts,
    ),
    (
        "edgefleet_controller_mqtt_reconnects",
        "MQTT connects after the first (the broker went away, the connection dropped, or a redelivery)",
        lambda s: max(0, s.mqtt_connects - 1),
    ),
    ("edgefleet_controller_alert_evaluations", "alert evaluation rounds completed", lambda s: s.alert_rounds),
    (
        "edgefleet_controller_alert_rule_failures",
        "agents whose alert rules raised in a round (the others were evaluated)",
        lambda s: s.alert_rule_failures,
    ),
)
NOTIFICATION_OUTCOMES = ("delivered", "failed", "given_up")
SEVERITIES = ("warning", "critical")


def _counted_by(name: str, doc: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def controller_metrics(status: ControllerStatus) -> Iterator[Metric]:
    """Every metric family of one status (pure)."""
    for name, doc, value in _COUNTERS:
        yield CounterMetricFamily(name, doc, value=value(status))
    yield _counted_by(
        "edgefleet_controller_messages_rejected",
        "messages not stored, by reason (<channel>:<error>)",
        "reason",
        status.rejected_by,
    )
    yield _counted_by(
        "edgefleet_controller_events_unknown_kind",
        "events of a kind this release does not know (a newer agent's): stored and shown as they came",
        "kind",
        status.unknown_event_kinds,
    )
    restarts = CounterMetricFamily(
        "edgefleet_controller_thread_restarts", "threads started again by the supervisor", labels=["thread"]
    )
    alive = GaugeMetricFamily("edgefleet_controller_thread_alive", "1 if the thread is running", labels=["thread"])
    for name, thread in sorted(status.threads.items()):
        restarts.add_metric([name], thread.restarts)
        alive.add_metric([name], float(thread.alive))
    yield restarts
    yield alive
    loop_errors = CounterMetricFamily(
        "edgefleet_controller_loop_errors", "rounds of a thread's loop that raised and were skipped", labels=["thread"]
    )
    for name, count in sorted(status.loop_errors.items()):
        loop_errors.add_metric([name], count)
    yield loop_errors
    yield GaugeMetricFamily(
        "edgefleet_controller_mqtt_connected",
        "1 if connected (and subscribed) to the broker",
        float(status.mqtt_connected),
    )
    yield GaugeMetricFamily("edgefleet_controller_ingest_queue", "messages received, not yet stored", status.queue)
    yield from _alert_metrics(status)


def _alert_metrics(status: ControllerStatus) -> Iterator[Metric]:
    firing = GaugeMetricFamily(
        "edgefleet_controller_alerts_firing", "alerts open now that this controller evaluates", labels=["severity"]
    )
    for severity in sorted({*SEVERITIES, *status.alerts_firing}):
        firing.add_metric([severity], status.alerts_firing.get(severity, 0))
    yield firing
    sent = CounterMetricFamily(
        "edgefleet_controller_alert_notifications",
        "webhook notification attempts, by outcome (failed ones are retried until given up)",
        labels=["outcome"],
    )
    for outcome in NOTIFICATION_OUTCOMES:
        sent.add_metric([outcome], status.notifications.get(outcome, 0))
    yield sent


class StatusCollector(Collector):
    def __init__(self, status: Callable[[], ControllerStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        return controller_metrics(self._status())


class HealthServer:
    """``/healthz`` and ``/metrics`` on ``address`` (port 0: any free port, see ``port``), in a daemon thread."""

    def __init__(
        self,
        address: tuple[str, int],
        status: Callable[[], ControllerStatus],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.address = address
        self.status = status
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(status))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else 0

    def start(self) -> HealthServer:
        server = ThreadingHTTPServer(self.address, _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="controller-health", daemon=True)
        self._thread.start()
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.address[0], self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """(status code, content type, body) for a GET of ``path``."""
        route = path.split("?", 1)[0]
        if route == "/healthz":
            status = self.status()
            body = json.dumps(status.health(), indent=1).encode()
            return (503 if status.problems else 200), "application/json", body
        if route == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return 404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n"


def _handler(endpoint: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                code, content_type, body = endpoint.respond(self.path)
            except Exception as exc:  # a scrape must never take the endpoint down
                log.exception("health endpoint failed")
                code, content_type, body = 500, "text/plain; charset=utf-8", f"{type(exc).__name__}\n".encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("health endpoint: " + format, *args)

    return Handler
