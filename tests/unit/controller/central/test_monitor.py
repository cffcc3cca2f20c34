"""The psutil sampler with a fake psutil, the monitor's rounds with fakes, and its Prometheus series."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from controller.central.host import HostSampler
from controller.central.metrics import CentralCollector
from controller.central.monitor import CentralMonitor
from controller.central.readings import BrokerFigures, CentralStatus, HostCounters, ProbeResult

NIC = SimpleNamespace


class FakePsutil:
    def __init__(self) -> None:
        self.cpu = [0.0, 37.5]
        self.io: SimpleNamespace | None = SimpleNamespace(read_bytes=100, write_bytes=200)
        self.paths: list[str] = []

    def cpu_percent(self, interval: float | None = None) -> float:
        assert interval is None  # never blocks the monitor
        return self.cpu.pop(0)

    def virtual_memory(self) -> SimpleNamespace:
        return SimpleNamespace(total=1000, available=400)

    def disk_usage(self, path: str) -> SimpleNamespace:
        self.paths.append(path)
        return SimpleNamespace(total=500, free=50)

    def disk_io_counters(self, perdisk: bool = False) -> SimpleNamespace | None:
        return self.io

    def net_io_counters(self, pernic: bool = False) -> dict[str, SimpleNamespace]:
        assert pernic
        return {
            "lo": NIC(bytes_sent=10**9, bytes_recv=10**9),
            "eth0": NIC(bytes_sent=30, bytes_recv=40),
            "wlan0": NIC(bytes_sent=3, bytes_recv=4),
        }


def test_the_sampler_reads_psutil_without_loopback(tmp_path: Path) -> None:
    ps = FakePsutil()
    reading = HostSampler(tmp_path, ps=ps, clock=lambda: 42.0).read()
    assert reading == HostCounters(
        at=42.0,
        cpu_percent=37.5,
        mem_total_bytes=1000,
        mem_available_bytes=400,
        disk_read_bytes=100,
        disk_write_bytes=200,
        net_sent_bytes=33,
        net_recv_bytes=44,
        disk_free_bytes=50,
        disk_total_bytes=500,
    )
    assert ps.paths == [str(tmp_path)]


def test_the_sampler_copes_without_disk_statistics(tmp_path: Path) -> None:
    ps = FakePsutil()
    ps.io = None
    reading = HostSampler(tmp_path, ps=ps).read()
    assert (reading.disk_read_bytes, reading.disk_write_bytes) == (None, None)


AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Readings:
    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> HostCounters:
        self.at += 10.0
        sent = int(self.at * 100)
        return HostCounters(self.at, 5.0, 100, 50, 0, 0, sent, 0, 10, 20)


def monitor(store: Any, probe: Any = None, broker: Any = None) -> CentralMonitor:
    return CentralMonitor(interval_s=10.0, host=Readings(), store=store, broker=broker, probe=probe, now=lambda: AT)


def test_a_round_stores_a_row_and_keeps_the_latest() -> None:
    rows: list[Mapping[str, Any]] = []
    outcomes = iter([ProbeResult(ok=True, put_s=0.1, get_s=0.1, delete_s=0.1), ProbeResult(ok=False, error="put: x")])
    central = monitor(rows.append, probe=lambda: next(outcomes), broker=lambda: BrokerFigures(connected=True))
    first = central.round()
    second = central.round()
    assert first.host.net_sent_bps is None
    assert second.host.net_sent_bps == 100.0
    assert (second.probes_total, second.probe_errors_total) == (2, 1)
    assert central.latest == second
    assert [r["s3_probe_errors"] for r in rows] == [0, 1]
    assert rows[1]["s3_probe_error"] == "put: x"
    assert rows[1]["broker_connected"] is True
    assert rows[1]["at"] == AT


def test_a_store_failure_is_counted_and_the_figures_are_kept() -> None:
    def broken(_row: Mapping[str, Any]) -> None:
        raise OSError("database away")

    central = monitor(broken)
    status = central.round()
    assert central.store_errors_total == 1
    assert central.latest == status
    assert (status.broker, status.probe) == (None, None)


def test_the_loop_survives_a_round_that_raises() -> None:
    stop = threading.Event()
    calls = {"n": 0}

    def host() -> HostCounters:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("psutil broke once")
        stop.set()
        return Readings()()

    central = CentralMonitor(interval_s=0.001, host=host, store=lambda _r: None)
    central.run(stop)
    assert central.round_errors_total == 1
    assert central.latest is not None


def scrape(status: CentralStatus | None) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CentralCollector(lambda: status))
    return generate_latest(registry).decode()


def test_nothing_is_exported_before_the_first_round() -> None:
    assert "edgefleet_central" not in scrape(None)


def test_the_series_of_a_round() -> None:
    central = monitor(lambda _r: None, probe=lambda: ProbeResult(ok=False, put_s=0.25, error="get: timeout"))
    central.round()
    status = central.round()
    text = scrape(status)
    assert "edgefleet_central_cpu_percent 5.0" in text
    assert "edgefleet_central_network_sent_bytes_per_second 100.0" in text
    assert "edgefleet_central_disk_read_bytes_per_second 0.0" in text
    assert "edgefleet_s3_probe_up 0.0" in text
    assert 'edgefleet_s3_probe_seconds{step="put"} 0.25' in text
    assert 'step="get"' not in text
    assert "edgefleet_s3_probes_total 2.0" in text
    assert "edgefleet_s3_probe_errors_total 2.0" in text
    assert "edgefleet_broker_up" not in text  # the broker is not monitored


@pytest.mark.parametrize(
    ("broker", "present", "absent"),
    [
        (
            BrokerFigures(connected=True, age_s=2.0, clients_connected=4, msgs_received_per_s=1.5, retained_count=3),
            [
                "edgefleet_broker_up 1.0",
                "edgefleet_broker_clients_connected 4.0",
                "edgefleet_broker_retained_messages 3.0",
                "edgefleet_broker_messages_received_per_second 1.5",
                "edgefleet_broker_sys_age_seconds 2.0",
            ],
            ["edgefleet_broker_messages_dropped "],
        ),
        (BrokerFigures(connected=False), ["edgefleet_broker_up 0.0"], ["edgefleet_broker_clients_connected"]),
    ],
)
def test_broker_series(broker: BrokerFigures, present: list[str], absent: list[str]) -> None:
    text = scrape(monitor(lambda _r: None, broker=lambda: broker).round())
    for line in present:
        assert line in text
    for line in absent:
        assert line not in text
