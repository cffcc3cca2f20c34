"""The central node monitor against the real services: the ``$SYS`` reader on a real Mosquitto (its own
monitor user; an agent user reads nothing there), the S3 probe on a real SeaweedFS with its own confined
identity, failing when the server is stopped or the port is dead, the central_sample table on SQLite and
PostgreSQL, and a controller that measures, stores and exports it all."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session

from controller.central.monitor import CentralMonitor
from controller.central.probe import S3Probe, probe_client
from controller.central.readings import HostCounters, sample_row
from controller.central.sysreader import SysReader
from controller.service.app import Controller
from controller.store import repo
from controller.store.central import add_sample, prune_samples, sample_count, samples_since, thin_samples
from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.localservices.process import free_port
from edgefleet.localservices.seaweed import PROBE_PREFIX, S3Identity
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_base.s3settings import S3Settings
from tests.integration.controller.fakes import add_user_and_wait
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


# --- the broker's $SYS figures ----------------------------------------------------------------------------


@pytest.fixture
def sys_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker that publishes $SYS every second, with a monitor user and an agent user."""
    broker = Mosquitto(directory=tmp_path / "mosquitto", persistence=False, sys_interval=1)
    broker.add_user("central-monitor", role="monitor")
    broker.add_user("pi-1")
    with broker:
        yield broker


@pytest.fixture
def reader(sys_broker: Mosquitto) -> Iterator[SysReader]:
    reader = SysReader(MqttUrl.parse(sys_broker.url_for("central-monitor")), client_id="unused").start()
    yield reader
    reader.stop()


def connected_client(broker: Mosquitto, user: str) -> mqtt.Client:
    client = paho_client(MqttUrl.parse(broker.url_for(user)), user)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_the_reader_sees_clients_messages_and_retained(sys_broker: Mosquitto, reader: SysReader) -> None:
    first = wait_for(lambda: reader.figures().clients_connected, 60, "the first $SYS figures")
    assert first >= 1
    agent = connected_client(sys_broker, "pi-1")
    try:
        for _ in range(20):
            agent.publish("edgefleet/v1/agents/pi-1/telemetry", b"{}", qos=1).wait_for_publish(10)
        agent.publish("edgefleet/v1/agents/pi-1/birth", b"{}", qos=1, retain=True).wait_for_publish(10)
        figures = wait_for(
            lambda: (f := reader.figures()).clients_connected == 2 and (f.msgs_received_per_s or 0) > 0 and f,
            30,
            lambda: f"the agent's messages in $SYS ({reader.figures()})",
        )
        assert figures.connected
        assert (figures.retained_count or 0) >= 1
        assert figures.dropped_total == 0
        assert figures.msgs_sent_per_s is not None
        assert figures.age_s is not None
        assert figures.age_s < 30
    finally:
        agent.loop_stop()
        agent.disconnect()


def test_an_agent_user_reads_nothing_of_sys(sys_broker: Mosquitto, reader: SysReader) -> None:
    got: list[str] = []
    agent = paho_client(MqttUrl.parse(sys_broker.url_for("pi-1")), "pi-1")
    agent.on_message = lambda _c, _u, message: got.append(message.topic)
    agent.on_connect = lambda client, *_a: client.subscribe("$SYS/#")
    agent.connect(sys_broker.host, sys_broker.port)
    agent.loop_start()
    try:
        # the monitor sees the broker count the agent, and then two more updates: the agent got none of them
        wait_for(lambda: reader.figures().clients_connected == 2, 60, "the agent counted in $SYS")
        uptime = reader._values.get("uptime_s", 0.0)
        wait_for(lambda: reader._values.get("uptime_s", 0.0) >= uptime + 2, 60, "two more $SYS updates")
        assert got == []
    finally:
        agent.loop_stop()
        agent.disconnect()


def test_the_reader_says_when_the_broker_is_away_and_comes_back(sys_broker: Mosquitto, reader: SysReader) -> None:
    wait_for(lambda: reader.figures().connected, 60, "connected")
    sys_broker.stop()
    wait_for(lambda: not reader.figures().connected, 60, "the reader noticing the broker is gone")
    sys_broker.start()
    wait_for(lambda: reader.figures().connected, 60, "the reader connecting again")


# --- the S3 probe --------------------------------------------------------------------------------------------


@pytest.fixture
def probe_store(tmp_path: Path) -> Iterator[tuple[SeaweedS3, S3Identity]]:
    server = SeaweedS3(directory=tmp_path / "s3")
    identity = server.add_probe_identity()
    with server:
        yield server, identity
        server.stop(hard=True)  # thrown away: no ~2 s graceful SeaweedFS shutdown


def probe_for(settings: S3Settings, key: str = f"{PROBE_PREFIX}ctl-1") -> S3Probe:
    return S3Probe(probe_client(settings, timeout_s=5), settings.bucket, key)


def test_a_probe_round_puts_gets_and_deletes(probe_store: tuple[SeaweedS3, S3Identity]) -> None:
    server, identity = probe_store
    result = probe_for(server.settings(identity)).run()
    assert result.ok, result.error
    assert (result.latency_s or 0) > 0
    assert list(server.client().list_objects(server.bucket, prefix=PROBE_PREFIX, recursive=True)) == []


def test_the_probe_identity_is_confined_to_its_prefix(probe_store: tuple[SeaweedS3, S3Identity]) -> None:
    server, identity = probe_store
    result = probe_for(server.settings(identity), key="recordings/pi-1/x.flac").run()
    assert not result.ok
    assert result.error.startswith("put: ")
    assert "AccessDenied" in result.error


def test_a_stopped_server_is_an_error_result_and_metrics_say_so(probe_store: tuple[SeaweedS3, S3Identity]) -> None:
    server, identity = probe_store
    probe = probe_for(server.settings(identity))
    central = CentralMonitor(interval_s=1.0, host=_host, store=lambda _row: None, probe=probe.run)
    assert central.round().probe == central.latest.probe  # type: ignore[union-attr]
    assert central.latest is not None
    assert central.latest.probe is not None
    assert central.latest.probe.ok
    server.stop()
    status = central.round()
    assert status.probe is not None
    assert not status.probe.ok
    assert status.probe.error.startswith("put: ")
    assert (status.probes_total, status.probe_errors_total) == (2, 1)


def test_a_dead_port_is_an_error_result() -> None:
    settings = S3Settings(f"http://127.0.0.1:{free_port()}", "ak", "sk", "recordings")
    result = probe_for(settings).run()
    assert not result.ok
    assert result.error.startswith("put: ")
    assert result.put_s is None


def _host() -> HostCounters:
    return HostCounters(0.0, 1.0, 100, 50, None, None, 0, 0, 10, 20)


# --- the table ---------------------------------------------------------------------------------------------


def test_samples_are_stored_thinned_and_pruned(database_url: str) -> None:
    engine = repo.make_engine(database_url)
    repo.create_all(engine)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    central = CentralMonitor(interval_s=15.0, host=_host, store=lambda _row: None)
    status = central.round()
    with Session(engine) as session:
        for minutes in range(0, 3 * 24 * 60, 30):  # every 30 min for three days, newest last
            at = now - timedelta(minutes=minutes)
            add_sample(session, "ctl-1", {**sample_row(at, 15.0, status.host, None, None), "cpu_percent": minutes % 7})
        add_sample(session, "ctl-2", sample_row(now, 15.0, status.host, None, None))
        before = sample_count(session)
        removed = thin_samples(session, older_than=now - timedelta(days=1), bucket=timedelta(hours=2))
        assert removed > 0
        assert sample_count(session) == before - removed
        rows = samples_since(session, now - timedelta(days=4), "ctl-1")
        old = [r for r in rows if r["at"] < now - timedelta(days=1)]
        assert all(r["downsampled"] for r in old)
        assert sum(r["span_s"] for r in old) == 15.0 * 95  # the 95 rows older than a day, merged
        assert all(r["at"].minute == 0 and r["at"].hour % 2 == 0 for r in old)
        assert not any(r["downsampled"] for r in rows if r["at"] >= now - timedelta(days=1))
        assert thin_samples(session, older_than=now - timedelta(days=1), bucket=timedelta(hours=2)) == 0
        assert prune_samples(session, before=now - timedelta(days=2)) > 0
        assert min(r["at"] for r in samples_since(session, now - timedelta(days=9))) >= now - timedelta(days=2)
        assert [r["controller_id"] for r in samples_since(session, now)] == ["ctl-1", "ctl-2"]
    engine.dispose()


# --- the controller ----------------------------------------------------------------------------------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_the_controller_measures_stores_and_exports_the_central_node(
    start_controller: Callable[..., Controller],
    mqtt_broker: Mosquitto,
    probe_store: tuple[SeaweedS3, S3Identity],
    tmp_path: Path,
) -> None:
    server, probe = probe_store
    add_user_and_wait(mqtt_broker, "central-monitor-e2e", role="monitor")
    janitor = server.settings()
    central: dict[str, Any] = {
        "interval_s": 1,
        "mqtt_url": mqtt_broker.url_for("central-monitor-e2e"),
        "s3_probe": {"access_key": probe.access_key, "secret_key": probe.secret_key},
    }
    controller = start_controller(
        f"sqlite:///{tmp_path / 'c.db'}",
        metrics={"listen": "127.0.0.1:0"},
        s3={
            "endpoint": janitor.endpoint,
            "access_key": janitor.access_key,
            "secret_key": janitor.secret_key,
            "bucket": janitor.bucket,
        },
        central=central,
    )
    assert controller.health is not None
    url = f"http://127.0.0.1:{controller.health.port}/metrics"

    def central_series() -> str | None:
        text = _get(url)
        return text if "edgefleet_broker_clients_connected" in text and "edgefleet_s3_probe_up 1.0" in text else None

    text = wait_for(
        central_series,
        60,
        lambda: f"the central series in /metrics: {controller.central and controller.central.latest}",
    )
    assert "edgefleet_central_cpu_percent" in text
    assert "edgefleet_broker_up 1.0" in text

    def stored() -> list[dict[str, Any]]:
        with Session(controller.engine) as session:
            return samples_since(session, datetime.now(UTC) - timedelta(minutes=5), "ctl-1")

    rows = wait_for(lambda: [r for r in stored() if r["broker_clients"]], 60, "a stored row with broker figures")
    assert any(r["s3_probes"] == 1 and r["s3_probe_errors"] == 0 for r in rows)
