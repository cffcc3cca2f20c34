"""The controller's measured series (histograms), in a registry of its own (no module-level metrics).

``/metrics`` (``controller.service.health``) serves this registry, to which the status collector (counters
and gauges read at scrape time) is added. What is measured where:

- ``ingest_lag``: per telemetry message, ``sent_to_received`` (receive time − ``sent_at``: the agent's
  clock against the controller's plus the transit), ``received_to_stored`` (commit − receive) and
  ``sent_to_stored``; every stored message of any channel counts in ``received_to_stored``.
- ``tick``: the full policy tick and the hot-path tick, in seconds.
- ``database``: each database operation the controller times, by operation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Histogram

from controller.store.agent_writes import IngestBatch

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
TICK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LAG_STAGES = ("sent_to_received", "received_to_stored", "sent_to_stored")
TICK_KINDS = ("full", "changed", "hot")
DB_OPERATIONS = ("ingest_batch", "dead_letter", "prune", "alerts_evaluate", "alerts_deliver", "recording_events")


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.ingest_lag = Histogram(
            "edgefleet_controller_ingest_lag_seconds",
            "time from a message's sent_at to its receipt and storage, by stage",
            ["stage"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.tick = Histogram(
            "edgefleet_controller_tick_duration_seconds",
            "policy tick duration (full: the whole fleet share; changed: the sites whose inputs changed, between full "
            "ticks; hot: one site at once on a hotter reading)",
            ["kind"],
            buckets=TICK_BUCKETS,
            registry=self.registry,
        )
        self.database = Histogram(
            "edgefleet_controller_database_seconds",
            "database operation duration, by operation",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        for stage in LAG_STAGES:  # every label value exported from the start
            self.ingest_lag.labels(stage)
        for kind in TICK_KINDS:
            self.tick.labels(kind)
        for operation in DB_OPERATIONS:
            self.database.labels(operation)

    def stored(self, batch: IngestBatch, stored_at: float) -> None:
        """A committed batch: its lags."""
        received_to_stored = self.ingest_lag.labels("received_to_stored")
        for item in batch.raw:
            received_to_stored.observe(max(0.0, stored_at - item[2]))
        sent_to_received, sent_to_stored = (
            self.ingest_lag.labels("sent_to_received"),
            self.ingest_lag.labels("sent_to_stored"),
        )
        for message, received in batch.telemetry:
            sent = message.sent_at.timestamp()
            sent_to_received.observe(max(0.0, received.timestamp() - sent))
            sent_to_stored.observe(max(0.0, stored_at - sent))

    @contextmanager
    def timed(self, operation: str) -> Iterator[None]:
        """Time a database operation (observed whether it succeeds or raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.database.labels(operation).observe(time.perf_counter() - started)
