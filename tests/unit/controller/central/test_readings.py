"""The central monitor's pure parts: rates from counters, $SYS parsing, probe results, downsampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.central.readings import (
    SYS_TOPICS,
    BrokerFigures,
    HostCounters,
    HostFigures,
    ProbeResult,
    broker_figures,
    downsample,
    host_figures,
    parse_sys,
    sample_row,
)

GiB = 1 << 30


def counters(at: float = 0.0, **changes: Any) -> HostCounters:
    values: dict[str, Any] = {
        "at": at,
        "cpu_percent": 12.5,
        "mem_total_bytes": 8 * GiB,
        "mem_available_bytes": 6 * GiB,
        "disk_read_bytes": 1000,
        "disk_write_bytes": 2000,
        "net_sent_bytes": 3000,
        "net_recv_bytes": 4000,
        "disk_free_bytes": 25 * GiB,
        "disk_total_bytes": 100 * GiB,
    }
    return HostCounters(**{**values, **changes})


def test_the_first_reading_has_levels_and_no_rates() -> None:
    figures = host_figures(None, counters())
    assert figures == HostFigures(
        cpu_percent=12.5,
        mem_used_percent=25.0,
        mem_available_bytes=6 * GiB,
        disk_free_bytes=25 * GiB,
        disk_used_percent=75.0,
    )


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"disk_read_bytes": 1000 + 10 * 512}, "disk_read_bps", 512.0),
        ({"disk_write_bytes": 2000 + 10 * 100}, "disk_write_bps", 100.0),
        ({"net_sent_bytes": 3000 + 10 * 7}, "net_sent_bps", 7.0),
        ({"net_recv_bytes": 4000}, "net_recv_bps", 0.0),
        ({"net_recv_bytes": 10}, "net_recv_bps", None),  # went backwards: a reset, no rate
        ({"disk_read_bytes": None}, "disk_read_bps", None),  # no disk statistics
    ],
)
def test_rates_are_per_second_between_two_readings(change: dict[str, Any], field: str, expected: float | None) -> None:
    figures = host_figures(counters(at=100.0), counters(at=110.0, **change))
    assert getattr(figures, field) == expected


def test_no_rate_without_time_between_the_readings() -> None:
    assert host_figures(counters(at=5.0), counters(at=5.0, net_sent_bytes=9000)).net_sent_bps is None


def test_a_zero_sized_disk_or_memory_reads_as_zero_percent() -> None:
    figures = host_figures(None, counters(mem_total_bytes=0, disk_total_bytes=0, disk_free_bytes=0))
    assert (figures.mem_used_percent, figures.disk_used_percent) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        ("$SYS/broker/clients/connected", b"17", ("clients_connected", 17.0)),
        ("$SYS/broker/load/publish/received/1min", b"120.50", ("publish_received_per_min", 120.5)),
        ("$SYS/broker/retained messages/count", b"53", ("retained_count", 53.0)),
        ("$SYS/broker/uptime", b"11 seconds", ("uptime_s", 11.0)),
        ("$SYS/broker/version", b"mosquitto version 2.0.11", None),  # not read
        ("$SYS/broker/clients/connected", b"lots", None),
        ("$SYS/broker/clients/connected", b"-3", None),
        ("$SYS/broker/clients/connected", b"inf", None),
        ("$SYS/broker/clients/connected", b"\xff\xfe", None),
        ("edgefleet/v1/agents/x/telemetry", b"1", None),
    ],
)
def test_parse_sys(topic: str, payload: bytes, expected: tuple[str, float] | None) -> None:
    assert parse_sys(topic, payload) == expected


@given(st.sampled_from(sorted(SYS_TOPICS)), st.binary(max_size=200))
def test_parse_sys_never_raises(topic: str, payload: bytes) -> None:
    parsed = parse_sys(topic, payload)
    assert parsed is None or (parsed[0] == SYS_TOPICS[topic] and parsed[1] >= 0)


def test_broker_figures_are_per_second_from_the_per_minute_loads() -> None:
    values = {
        "clients_connected": 3.0,
        "publish_received_per_min": 120.0,
        "publish_sent_per_min": 60.0,
        "publish_dropped_per_min": 6.0,
        "publish_dropped_total": 42.0,
        "retained_count": 7.0,
    }
    assert broker_figures(values, connected=True, age_s=1.5) == BrokerFigures(
        connected=True,
        age_s=1.5,
        clients_connected=3,
        msgs_received_per_s=2.0,
        msgs_sent_per_s=1.0,
        msgs_dropped_per_s=0.1,
        dropped_total=42,
        retained_count=7,
    )


def test_broker_figures_not_yet_sent_are_none() -> None:
    assert broker_figures({}, connected=False, age_s=None) == BrokerFigures(connected=False)


@pytest.mark.parametrize(
    ("probe", "latency"),
    [
        (ProbeResult(ok=True, put_s=0.1, get_s=0.2, delete_s=0.3), pytest.approx(0.6)),
        (ProbeResult(ok=False, put_s=0.1, error="get: timeout"), None),
        (ProbeResult(ok=False, error="put: refused"), None),
    ],
)
def test_probe_latency_is_the_whole_round_when_it_succeeded(probe: ProbeResult, latency: object) -> None:
    assert probe.latency_s == latency


T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOST = host_figures(None, counters())


def row(seconds: float, **changes: Any) -> dict[str, Any]:
    broker = BrokerFigures(connected=True, clients_connected=2, msgs_received_per_s=1.0)
    probe = ProbeResult(ok=True, put_s=0.01, get_s=0.01, delete_s=0.01)
    return {**sample_row(T0 + timedelta(seconds=seconds), 15.0, HOST, broker, probe), **changes}


def test_downsample_merges_one_bucket_into_one_row() -> None:
    rows = [
        row(0, cpu_percent=10.0, broker_clients=2, s3_probe_latency_s=0.1),
        row(15, cpu_percent=30.0, broker_clients=5, s3_probe_latency_s=None, s3_probe_errors=1, s3_probe_error="x"),
        row(30, cpu_percent=20.0, broker_clients=3, s3_probe_latency_s=0.3, broker_connected=False),
    ]
    (merged,) = downsample(rows, timedelta(minutes=5), T0)
    assert merged["at"] == T0
    assert merged["cpu_percent"] == pytest.approx(20.0)
    assert merged["broker_clients"] == 5
    assert merged["s3_probe_latency_s"] == 0.3
    assert (merged["s3_probes"], merged["s3_probe_errors"], merged["s3_probe_error"]) == (3, 1, "x")
    assert merged["span_s"] == 45.0
    assert merged["broker_connected"] is False


def test_downsample_keeps_none_where_nothing_was_measured() -> None:
    (merged,) = downsample([row(0, disk_read_bps=None, broker_connected=None)], timedelta(minutes=5), T0)
    assert merged["disk_read_bps"] is None
    assert merged["broker_connected"] is None


def test_downsample_refuses_an_empty_bucket() -> None:
    with pytest.raises(ValueError, match="positive"):
        downsample([], timedelta(0), T0)


@given(st.lists(st.integers(min_value=0, max_value=7200), max_size=60), st.integers(min_value=1, max_value=3600))
def test_downsample_keeps_the_counts_and_one_row_per_bucket(offsets: list[int], bucket_s: int) -> None:
    rows = [row(s) for s in sorted(offsets)]
    merged = downsample(rows, timedelta(seconds=bucket_s), T0)
    assert len(merged) == len({s // bucket_s for s in offsets})
    assert sum(m["s3_probes"] for m in merged) == len(rows)
    assert sum(m["span_s"] for m in merged) == 15.0 * len(rows)
    assert [m["at"] for m in merged] == sorted({T0 + timedelta(seconds=(s // bucket_s) * bucket_s) for s in offsets})
