"""The central node's figures, computed from raw readings (pure: no psutil, paho, minio, clock or database).

- ``HostCounters`` is one psutil reading (cumulative byte counters as the kernel keeps them); ``host_figures``
  turns two consecutive readings into rates. A counter that went backwards (a reset, a disk that went away)
  gives no rate (``None``) rather than a negative one.
- ``parse_sys`` reads one Mosquitto ``$SYS`` message; ``broker_figures`` turns the latest values into per-second
  figures. Mosquitto 2.0 publishes its ``load/.../1min`` values as messages *per minute* (an exponentially
  weighted moving average over one minute), so they are divided by 60; ``publish`` counts only application
  messages (PUBLISH packets), not the protocol's acknowledgements and pings (which ``messages`` counts).
- ``ProbeResult`` is one S3 probe (put, get, delete of a small object): each step's seconds, or the error.
- ``downsample`` merges full-resolution rows into one row per bucket of time (means of the rates, maxima of the
  latencies, sums of the probe counts), for the retention of old central samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

#: the ``$SYS`` topics read, and the name each value is kept under (Mosquitto 2.0)
SYS_TOPICS: Mapping[str, str] = {
    "$SYS/broker/clients/connected": "clients_connected",
    "$SYS/broker/load/publish/received/1min": "publish_received_per_min",
    "$SYS/broker/load/publish/sent/1min": "publish_sent_per_min",
    "$SYS/broker/load/publish/dropped/1min": "publish_dropped_per_min",
    "$SYS/broker/publish/messages/dropped": "publish_dropped_total",
    "$SYS/broker/retained messages/count": "retained_count",
    "$SYS/broker/uptime": "uptime_s",
}
#: the subscription that brings them (``$SYS/#`` would bring the per-client and bridge topics too)
SYS_FILTER = "$SYS/broker/#"


@dataclass(frozen=True)
class HostCounters:
    """One reading of the host: ``at`` in seconds on a monotonic clock; byte counters cumulative."""

    at: float
    cpu_percent: float
    mem_total_bytes: int
    mem_available_bytes: int
    disk_read_bytes: int | None
    disk_write_bytes: int | None
    net_sent_bytes: int
    net_recv_bytes: int
    disk_free_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class HostFigures:
    cpu_percent: float
    mem_used_percent: float
    mem_available_bytes: int
    disk_free_bytes: int
    disk_used_percent: float
    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_sent_bps: float | None = None
    net_recv_bps: float | None = None


def _rate(before: int | None, after: int | None, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def host_figures(previous: HostCounters | None, current: HostCounters) -> HostFigures:
    """The figures of ``current``; rates need the ``previous`` reading (none at the first sample)."""
    figures = HostFigures(
        cpu_percent=current.cpu_percent,
        mem_used_percent=_percent(current.mem_total_bytes - current.mem_available_bytes, current.mem_total_bytes),
        mem_available_bytes=current.mem_available_bytes,
        disk_free_bytes=current.disk_free_bytes,
        disk_used_percent=_percent(current.disk_total_bytes - current.disk_free_bytes, current.disk_total_bytes),
    )
    if previous is None:
        return figures
    seconds = current.at - previous.at
    return replace(
        figures,
        disk_read_bps=_rate(previous.disk_read_bytes, current.disk_read_bytes, seconds),
        disk_write_bps=_rate(previous.disk_write_bytes, current.disk_write_bytes, seconds),
        net_sent_bps=_rate(previous.net_sent_bytes, current.net_sent_bytes, seconds),
        net_recv_bps=_rate(previous.net_recv_bytes, current.net_recv_bytes, seconds),
    )


def parse_sys(topic: str, payload: bytes) -> tuple[str, float] | None:
    """``(name, value)`` of a ``$SYS`` message this module reads, else ``None`` (other topics, garbage).
    ``$SYS/broker/uptime`` reads ``"123 seconds"``; the others are plain numbers."""
    name = SYS_TOPICS.get(topic)
    if name is None:
        return None
    text = payload[:64].decode("ascii", errors="replace").split(" ", 1)[0]
    try:
        value = float(text)
    except ValueError:
        return None
    return (name, value) if value >= 0 and value != float("inf") else None


@dataclass(frozen=True)
class BrokerFigures:
    """What the broker says about itself. ``connected``: the monitor's own connection is up; ``age_s``: seconds
    since the last ``$SYS`` message (``None``: none yet). Every figure is ``None`` until the broker sent it."""

    connected: bool
    age_s: float | None = None
    clients_connected: int | None = None
    msgs_received_per_s: float | None = None
    msgs_sent_per_s: float | None = None
    msgs_dropped_per_s: float | None = None
    dropped_total: int | None = None
    retained_count: int | None = None


def broker_figures(values: Mapping[str, float], *, connected: bool, age_s: float | None) -> BrokerFigures:
    def per_s(name: str) -> float | None:
        value = values.get(name)
        return None if value is None else value / 60.0

    def count(name: str) -> int | None:
        value = values.get(name)
        return None if value is None else int(value)

    return BrokerFigures(
        connected=connected,
        age_s=age_s,
        clients_connected=count("clients_connected"),
        msgs_received_per_s=per_s("publish_received_per_min"),
        msgs_sent_per_s=per_s("publish_sent_per_min"),
        msgs_dropped_per_s=per_s("publish_dropped_per_min"),
        dropped_total=count("publish_dropped_total"),
        retained_count=count("retained_count"),
    )


@dataclass(frozen=True)
class ProbeResult:
    """One S3 probe: ``ok`` when put, get (same bytes back) and delete all succeeded; ``error`` names the step and
    what went wrong otherwise. Seconds of the steps that ran."""

    ok: bool
    put_s: float | None = None
    get_s: float | None = None
    delete_s: float | None = None
    error: str = ""

    @property
    def latency_s(self) -> float | None:
        """The whole round (put + get + delete), only when it succeeded."""
        if not self.ok or self.put_s is None or self.get_s is None or self.delete_s is None:
            return None
        return self.put_s + self.get_s + self.delete_s


@dataclass(frozen=True)
class CentralStatus:
    """The latest round: ``at`` (UTC), host figures, broker figures (``None``: not monitored), the last probe
    (``None``: no probe configured) and running totals."""

    at: datetime
    host: HostFigures
    broker: BrokerFigures | None
    probe: ProbeResult | None
    probes_total: int = 0
    probe_errors_total: int = 0
    round_errors_total: int = 0


def sample_row(
    at: datetime, interval_s: float, host: HostFigures, broker: BrokerFigures | None, probe: ProbeResult | None
) -> dict[str, Any]:
    """The stored row (columns of ``CentralSample``) of one round."""
    row: dict[str, Any] = {"at": at, "span_s": interval_s, **asdict(host)}
    if broker is not None:
        row |= {
            "broker_connected": broker.connected,
            "broker_clients": broker.clients_connected,
            "broker_msgs_received_per_s": broker.msgs_received_per_s,
            "broker_msgs_sent_per_s": broker.msgs_sent_per_s,
            "broker_msgs_dropped_per_s": broker.msgs_dropped_per_s,
            "broker_dropped_total": broker.dropped_total,
            "broker_retained": broker.retained_count,
        }
    if probe is not None:
        row |= {
            "s3_probes": 1,
            "s3_probe_errors": 0 if probe.ok else 1,
            "s3_probe_latency_s": probe.latency_s,
            "s3_probe_error": probe.error[:200],
        }
    return row


#: how ``downsample`` merges each column of a bucket (the rest: the latest row's value)
MEANS = (
    "cpu_percent",
    "mem_used_percent",
    "disk_used_percent",
    "disk_read_bps",
    "disk_write_bps",
    "net_sent_bps",
    "net_recv_bps",
    "broker_msgs_received_per_s",
    "broker_msgs_sent_per_s",
    "broker_msgs_dropped_per_s",
)
MAXIMA = ("broker_clients", "s3_probe_latency_s")
SUMS = ("s3_probes", "s3_probe_errors", "span_s")


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _merge(rows: Sequence[Mapping[str, Any]], start: datetime) -> dict[str, Any]:
    merged = dict(rows[-1])
    merged["at"] = start
    states = [r["broker_connected"] for r in rows if r.get("broker_connected") is not None]
    merged["broker_connected"] = all(states) if states else None
    for name in MEANS:
        merged[name] = _mean([r[name] for r in rows if r.get(name) is not None])
    for name in MAXIMA:
        present = [r[name] for r in rows if r.get(name) is not None]
        merged[name] = max(present) if present else None
    for name in SUMS:
        merged[name] = sum(r.get(name) or 0 for r in rows)
    errors = [r.get("s3_probe_error") for r in rows if r.get("s3_probe_error")]
    merged["s3_probe_error"] = errors[-1] if errors else ""
    return merged


def downsample(rows: Iterable[Mapping[str, Any]], bucket: timedelta, epoch: datetime) -> list[dict[str, Any]]:
    """One row per ``bucket`` of time (counted from ``epoch``; rows in ``at`` order), dated at the bucket's start."""
    size = bucket.total_seconds()
    if size <= 0:
        raise ValueError("bucket must be positive")
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(int((row["at"] - epoch).total_seconds() // size), []).append(row)
    return [_merge(group, epoch + index * bucket) for index, group in sorted(groups.items())]
