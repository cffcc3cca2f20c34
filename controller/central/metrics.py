"""The central monitor's Prometheus series (registered on the controller's ``/metrics``): the latest round's
figures as gauges, the probe totals as counters. Nothing is exported before the first round; a figure that was
not measured (``None``) is left out rather than exported as 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.central.readings import BrokerFigures, CentralStatus, HostFigures, ProbeResult

_HOST: tuple[tuple[str, str, Callable[[HostFigures], float | None]], ...] = (
    ("edgefleet_central_cpu_percent", "CPU use of the central node (all cores, 0-100)", lambda h: h.cpu_percent),
    ("edgefleet_central_memory_used_percent", "memory in use (total - available)", lambda h: h.mem_used_percent),
    ("edgefleet_central_memory_available_bytes", "memory available", lambda h: h.mem_available_bytes),
    ("edgefleet_central_disk_free_bytes", "free space of the data file system", lambda h: h.disk_free_bytes),
    ("edgefleet_central_disk_used_percent", "used space of the data file system", lambda h: h.disk_used_percent),
    ("edgefleet_central_disk_read_bytes_per_second", "disk reads, all disks", lambda h: h.disk_read_bps),
    ("edgefleet_central_disk_write_bytes_per_second", "disk writes, all disks", lambda h: h.disk_write_bps),
    ("edgefleet_central_network_sent_bytes_per_second", "bytes sent, all interfaces but lo", lambda h: h.net_sent_bps),
    (
        "edgefleet_central_network_received_bytes_per_second",
        "bytes received, all interfaces but lo",
        lambda h: h.net_recv_bps,
    ),
)
_BROKER: tuple[tuple[str, str, Callable[[BrokerFigures], float | None]], ...] = (
    ("edgefleet_broker_up", "1 if the monitor's connection to the broker is up", lambda b: float(b.connected)),
    ("edgefleet_broker_sys_age_seconds", "seconds since the broker's last $SYS message", lambda b: b.age_s),
    ("edgefleet_broker_clients_connected", "clients connected to the broker", lambda b: b.clients_connected),
    (
        "edgefleet_broker_messages_received_per_second",
        "PUBLISH messages received by the broker (its 1-minute average)",
        lambda b: b.msgs_received_per_s,
    ),
    (
        "edgefleet_broker_messages_sent_per_second",
        "PUBLISH messages sent by the broker (its 1-minute average)",
        lambda b: b.msgs_sent_per_s,
    ),
    (
        "edgefleet_broker_messages_dropped_per_second",
        "PUBLISH messages dropped by the broker (its 1-minute average)",
        lambda b: b.msgs_dropped_per_s,
    ),
    (
        "edgefleet_broker_messages_dropped",
        "PUBLISH messages dropped since the broker started (resets with it)",
        lambda b: b.dropped_total,
    ),
    ("edgefleet_broker_retained_messages", "retained messages the broker holds", lambda b: b.retained_count),
)


def _gauges(table: tuple[tuple[str, str, Callable[..., float | None]], ...], value: object) -> Iterator[Metric]:
    for name, doc, read in table:
        figure = read(value)
        if figure is not None:
            yield GaugeMetricFamily(name, doc, value=float(figure))


def _probe(probe: ProbeResult) -> Iterator[Metric]:
    yield GaugeMetricFamily("edgefleet_s3_probe_up", "1 if the last S3 probe succeeded", value=float(probe.ok))
    steps = GaugeMetricFamily(
        "edgefleet_s3_probe_seconds", "seconds of each step of the last S3 probe", labels=["step"]
    )
    for step, seconds in (("put", probe.put_s), ("get", probe.get_s), ("delete", probe.delete_s)):
        if seconds is not None:
            steps.add_metric([step], seconds)
    yield steps


class CentralCollector(Collector):
    """Reads ``status()`` (a ``CentralMonitor``'s ``latest``) at scrape time."""

    def __init__(self, status: Callable[[], CentralStatus | None]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        if status is None:
            return
        yield from _gauges(_HOST, status.host)
        if status.broker is not None:
            yield from _gauges(_BROKER, status.broker)
        if status.probe is not None:
            yield from _probe(status.probe)
            yield CounterMetricFamily("edgefleet_s3_probes", "S3 probes run", value=status.probes_total)
            yield CounterMetricFamily(
                "edgefleet_s3_probe_errors", "S3 probes that failed", value=status.probe_errors_total
            )
