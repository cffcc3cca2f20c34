"""The central node as the dashboard shows it: the controller's ``central_sample`` rows (its central monitor:
host, broker ``$SYS``, S3 probe) as chart points, and the per-file upload durations of the stored upload events
(a Prometheus histogram on ``/metrics``). Reads only; the tables are the controller's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from controller.store.central import samples_since
from controller.store.models import CentralSample, UploadEvent
from dashboard.readmodel import downsample
from fleet_protocol.vocabulary import EventKind


@dataclass(frozen=True, slots=True)
class CentralPoint:
    """One ``central_sample`` row (``span_s``: the seconds it covers; older rows are merged). ``None``: not
    measured (no previous reading for a rate, broker or S3 not monitored, a figure the broker has not sent)."""

    at: datetime
    span_s: float
    cpu_percent: float
    mem_used_percent: float
    mem_available_bytes: int
    disk_free_bytes: int
    disk_used_percent: float
    disk_read_bps: float | None
    disk_write_bps: float | None
    net_sent_bps: float | None
    net_recv_bps: float | None
    broker_connected: bool | None
    broker_clients: int | None
    broker_msgs_received_per_s: float | None
    broker_msgs_sent_per_s: float | None
    broker_msgs_dropped_per_s: float | None
    broker_dropped_total: int | None
    broker_retained: int | None
    s3_probes: int
    s3_probe_errors: int
    s3_probe_latency_s: float | None
    s3_probe_error: str


@dataclass(frozen=True, slots=True)
class CentralSeries:
    """The samples of one controller's central monitor (``controllers``: every controller that has samples in
    the range, so the page can offer the others)."""

    controller_id: str
    controllers: list[str]
    points: list[CentralPoint]


_POINT_FIELDS = tuple(f.name for f in fields(CentralPoint))
assert set(_POINT_FIELDS) <= set(CentralSample.model_fields), "CentralPoint names a column central_sample lacks"


def central_series(session: Session, since: datetime, controller_id: str | None, max_points: int) -> CentralSeries:
    """The range from ``since`` of ``controller_id`` (default: the controller with the newest sample)."""
    rows = samples_since(session, since)
    controllers = sorted({r["controller_id"] for r in rows})
    if controller_id is None:
        controller_id = rows[-1]["controller_id"] if rows else ""
    points = [CentralPoint(**{n: r[n] for n in _POINT_FIELDS}) for r in rows if r["controller_id"] == controller_id]
    return CentralSeries(controller_id, controllers, downsample(points, max_points))


# --- per-file upload durations -----------------------------------------------------------------------------

#: the histogram's upper bounds in seconds: a recording takes seconds on a LAN, up to hours on a thin link
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


@dataclass(frozen=True, slots=True)
class UploadDurations:
    """Completed uploads: how many took at most each bound (cumulative), how many in all, their seconds in all."""

    le: tuple[tuple[float, int], ...]
    count: int
    total_s: float


def upload_durations(session: Session) -> UploadDurations:
    """One aggregate over the stored ``upload_completed`` events (their ``duration_s``). A file found already
    stored completes with 0 s and no upload: left out."""
    duration = col(UploadEvent.duration_s)
    query = sa_select(
        func.count(),
        func.coalesce(func.sum(duration), 0.0),
        *(func.coalesce(func.sum(case((duration <= bound, 1), else_=0)), 0) for bound in DURATION_BUCKETS),
    ).where(col(UploadEvent.kind) == EventKind.UPLOAD_COMPLETED.value, duration > 0)
    count, total, *cumulative = session.execute(query).one()
    le = tuple(zip(DURATION_BUCKETS, (int(n) for n in cumulative), strict=True))
    return UploadDurations(le, int(count), float(total))


def duration_histogram(durations: UploadDurations) -> HistogramMetricFamily:
    # bounds written as prometheus_client writes its own ("1.0", "+Inf")
    buckets = [(repr(bound), float(n)) for bound, n in durations.le] + [("+Inf", float(durations.count))]
    return HistogramMetricFamily(
        "edgefleet_upload_duration_seconds",
        "per-file upload duration (start to completed), of the stored upload_completed events",
        buckets=buckets,
        sum_value=durations.total_s,
    )


class UploadDurationCollector(Collector):
    """Reads ``load()`` at scrape time (``/metrics`` keeps the page for ``metrics_cache_s``)."""

    def __init__(self, load: Callable[[], UploadDurations]) -> None:
        self._load = load

    def collect(self) -> Iterator[Metric]:
        yield duration_histogram(self._load())

    def describe(self) -> list[Metric]:
        return []  # no database read at registration
