"""The transcoder's Prometheus metrics (served on ``[metrics] listen``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class TranscoderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Counter("edgefleet_transcoder_jobs", "Jobs finished, by outcome", ["outcome"], registry=r)
        self.bytes_in = Counter("edgefleet_transcoder_bytes_in", "Raw bytes read by finished jobs", registry=r)
        self.bytes_out = Counter("edgefleet_transcoder_bytes_out", "Bytes of the objects written", registry=r)
        self.seconds = Counter("edgefleet_transcoder_seconds", "Wall time spent on jobs", registry=r)
        self.queue_depth = Gauge("edgefleet_transcoder_queue_depth", "Jobs queued or running", registry=r)
        self.workers = Gauge("edgefleet_transcoder_workers_alive", "Workers with a recent heartbeat", registry=r)
        for outcome in ("done", "skipped", "failed", "retry"):
            self.jobs.labels(outcome)
