"""Prometheus ``/metrics``: fleet and per-agent gauges and counters, read from the database at scrape time.

A custom collector (no module-level metrics): each scrape reads one fleet snapshot. The agents'
own running totals (uploaded bytes, retries, errors) are exported as counters. The dashboard's own
counters (logins, override changes) are :class:`LabelledCounter`: every label value is exported from 0
before its first event, and there is no ``_created`` series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from controller.alerting.rules import Kind
from dashboard.readmodel import AgentRow, FleetSnapshot

_AGENT_GAUGES: tuple[tuple[str, str, Callable[[AgentRow], float | None]], ...] = (
    ("edgefleet_agent_up", "1 if the agent is online", lambda r: float(r.online)),
    ("edgefleet_agent_temperature_celsius", "SoC temperature", lambda r: r.temperature_c),
    ("edgefleet_agent_throttled", "vcgencmd get_throttled bit mask", lambda r: float(r.throttled)),
    ("edgefleet_agent_backlog_files", "files waiting to upload", lambda r: float(r.backlog_files)),
    ("edgefleet_agent_backlog_bytes", "bytes waiting to upload", lambda r: float(r.backlog_bytes)),
    ("edgefleet_agent_backlog_oldest_age_seconds", "age of the oldest waiting file", lambda r: r.backlog_oldest_age_s),
    ("edgefleet_agent_throughput_bytes_per_second", "measured upload rate", lambda r: r.throughput_bps),
    (
        "edgefleet_agent_backlog_eta_seconds",
        "time to drain the backlog at the measured rate",
        lambda r: r.backlog_eta_s,
    ),
    ("edgefleet_agent_active_uploads", "uploads in flight", lambda r: float(r.active_uploads)),
    (
        "edgefleet_agent_assigned_concurrency",
        "concurrency of the assignment in force",
        lambda r: float(r.assignment.concurrency) if r.assignment else None,
    ),
    (
        "edgefleet_agent_paused",
        "1 if the assignment pauses the agent",
        lambda r: float(bool(r.assignment and r.assignment.paused)),
    ),
    ("edgefleet_agent_overridden", "1 if an operator override applies", lambda r: float(r.overridden)),
    (
        "edgefleet_agent_thermal_level",
        "the controller's thermal step: 0 normal, 1 warm, 2 hot, 3 very hot, 4 critical (paused)",
        lambda r: float(r.thermal_level) if r.assignment else None,
    ),
    (
        "edgefleet_agent_mqtt_rtt_seconds",
        "the agent's MQTT round trip to the broker (QoS 1 PUBLISH to PUBACK, recent median)",
        lambda r: r.mqtt_rtt_s,
    ),
    (
        "edgefleet_agent_s3_ttfb_seconds",
        "the agent's S3 time to first byte of small requests (recent median)",
        lambda r: r.s3_ttfb_s,
    ),
    ("edgefleet_agent_process_cpu_percent", "the agent process's CPU, % of one core", lambda r: r.process_cpu_percent),
    (
        "edgefleet_agent_process_resident_bytes",
        "the agent process's resident memory",
        lambda r: None if r.process_rss_bytes is None else float(r.process_rss_bytes),
    ),
)

_AGENT_COUNTERS: tuple[tuple[str, str, Callable[[AgentRow], int]], ...] = (
    ("edgefleet_agent_uploaded_bytes", "bytes uploaded, as the agent reports", lambda r: r.bytes_uploaded_total),
    ("edgefleet_agent_retries", "upload retries, as the agent reports", lambda r: r.retries_total),
    ("edgefleet_agent_errors", "upload errors, as the agent reports", lambda r: r.errors_total),
)


def fleet_metrics(snapshot: FleetSnapshot) -> Iterator[Metric]:
    """All metric families of one snapshot (pure)."""
    t = snapshot.totals
    agents = GaugeMetricFamily("edgefleet_agents", "agents known, by state", labels=["state"])
    agents.add_metric(["online"], t.online)
    agents.add_metric(["offline"], t.agents - t.online)
    yield agents
    fleet = (
        ("edgefleet_fleet_throughput_bytes_per_second", "sum of the online agents' upload rates", t.throughput_bps),
        ("edgefleet_fleet_backlog_files", "files waiting on all agents", t.backlog_files),
        ("edgefleet_fleet_backlog_bytes", "bytes waiting on all agents", t.backlog_bytes),
        ("edgefleet_hot_agents", "online agents at or above the soft temperature limit", t.hot),
        ("edgefleet_uploaded_today_files", "uploads completed since 00:00 UTC", t.uploaded_today_files),
        ("edgefleet_uploaded_today_bytes", "original bytes uploaded since 00:00 UTC", t.uploaded_today_bytes),
        ("edgefleet_saved_today_bytes", "bytes saved by compression since 00:00 UTC", t.saved_today_bytes),
    )
    for name, doc, total in fleet:
        yield GaugeMetricFamily(name, doc, value=total)
    failures = GaugeMetricFamily(
        "edgefleet_failures_today", "failed uploads and rejected files since 00:00 UTC", labels=["kind"]
    )
    failures.add_metric(["upload_failed"], t.failures_today)
    failures.add_metric(["file_rejected"], t.rejected_today)
    yield failures
    alerts = GaugeMetricFamily(
        "edgefleet_alerts", "open alerts (as the controller stored them), by kind", labels=["kind"]
    )
    for kind in Kind:
        alerts.add_metric([kind.value], sum(1 for a in snapshot.alerts if a.kind == kind.value))
    yield alerts
    for name, doc, gauge_value in _AGENT_GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["agent", "site"])
        for row in snapshot.rows:
            value = gauge_value(row)
            if value is not None:
                family.add_metric([row.agent_id, row.site], value)
        yield family
    for name, doc, counter_value in _AGENT_COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=["agent", "site"])
        for row in snapshot.rows:
            counter.add_metric([row.agent_id, row.site], counter_value(row))
        yield counter


class LabelledCounter(Collector):
    """A counter with one label whose values are known in advance, all exported from zero.

    Unlike ``prometheus_client.Counter`` it has no ``_created`` series (which the text format shows as a
    separate gauge under the counter's help text, reading as if it counted something), and a label value
    has a sample before its first event, so ``rate()`` and alerts see the first one.
    """

    def __init__(self, name: str, documentation: str, label: str, values: Iterable[str]) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self._counts = dict.fromkeys(values, 0.0)
        self._lock = threading.Lock()

    def inc(self, value: str, amount: float = 1.0) -> None:
        if value not in self._counts:
            raise ValueError(f"{self.name}: unknown {self.label} {value!r}")
        with self._lock:
            self._counts[value] += amount

    def value(self, value: str) -> float:
        with self._lock:
            return self._counts[value]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            counts = list(self._counts.items())
        for value, count in counts:
            family.add_metric([value], count)
        yield family

    def describe(self) -> list[Metric]:
        return list(self.collect())


class FleetCollector(Collector):
    def __init__(self, load: Callable[[], FleetSnapshot]) -> None:
        self._load = load

    def collect(self) -> Iterator[Metric]:
        return fleet_metrics(self._load())

    def describe(self) -> list[Metric]:
        return []  # no database read at registration


class MetricsPage:
    """The exposition text, kept for ``max_age_s``: a 2,000-agent fleet is ~30,000 samples (~150 ms to
    format), and Prometheus scrapes every 15 s or so. ``max_age_s = 0`` formats on every scrape."""

    def __init__(self, registry: CollectorRegistry, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        self._registry = registry
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._body = b""
        self._made_at: float | None = None

    def body(self) -> bytes:
        with self._lock:
            now = self._clock()
            if self._made_at is None or now - self._made_at >= self._max_age_s:
                self._body, self._made_at = generate_latest(self._registry), now
            return self._body

    def response(self) -> Response:
        return Response(self.body(), media_type=CONTENT_TYPE_LATEST)
