"""``CentralMonitor``: every ``interval_s`` one round — read the host, take the broker's latest ``$SYS`` figures,
run the S3 probe — store it as a ``central_sample`` row and keep it as ``latest`` (what ``/metrics`` and the
alert rules read: plain values). Once an hour it merges old rows and deletes those past the retention.

A round that fails (the database away, psutil raising) is logged and counted; the next round runs as usual.
``build_monitor`` makes one from the controller's configuration."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from controller.central.host import HostSampler
from controller.central.probe import S3Probe, probe_client
from controller.central.readings import (
    BrokerFigures,
    CentralStatus,
    HostCounters,
    ProbeResult,
    host_figures,
    sample_row,
)
from controller.central.sysreader import SysReader
from controller.config import ControllerConfig
from controller.store.central import add_sample, prune_samples, thin_samples

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 3600.0


class CentralMonitor:
    def __init__(
        self,
        *,
        interval_s: float,
        host: Callable[[], HostCounters],
        store: Callable[[Mapping[str, Any]], None],
        broker: Callable[[], BrokerFigures] | None = None,
        probe: Callable[[], ProbeResult] | None = None,
        housekeeping: Callable[[datetime], None] = lambda _now: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.interval_s = interval_s
        self._host, self._store, self._broker, self._probe = host, store, broker, probe
        self._housekeeping, self._now = housekeeping, now
        self._previous: HostCounters | None = None
        self.latest: CentralStatus | None = None
        self.probes_total = 0
        self.probe_errors_total = 0
        self.round_errors_total = 0
        self.store_errors_total = 0

    def round(self) -> CentralStatus:
        """Measure once, store the row (a store failure is counted, the figures are kept) and return them."""
        counters = self._host()
        host = host_figures(self._previous, counters)
        self._previous = counters
        broker = self._broker() if self._broker is not None else None
        probe = self._probe() if self._probe is not None else None
        if probe is not None:
            self.probes_total += 1
            self.probe_errors_total += 0 if probe.ok else 1
            if not probe.ok:
                log.warning("S3 probe failed: %s", probe.error)
        at = self._now()
        self.latest = CentralStatus(
            at, host, broker, probe, self.probes_total, self.probe_errors_total, self.round_errors_total
        )
        try:
            self._store(sample_row(at, self.interval_s, host, broker, probe))
        except Exception as exc:
            self.store_errors_total += 1
            log.warning("cannot store the central sample: %s", exc)
        return self.latest

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set; housekeeping once an hour."""
        next_housekeeping = time.monotonic() + 60
        while not stop.wait(self.interval_s):
            try:
                self.round()
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S
                    self._housekeeping(self._now())
            except Exception:
                self.round_errors_total += 1
                log.exception("central monitor round failed; going on")


def disk_path(config: ControllerConfig) -> Path:
    """The watched file system: ``[central] disk_path``, else the SQLite database's directory, else ``/``."""
    if config.central.disk_path:
        return Path(config.central.disk_path)
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path("/")


def build_monitor(config: ControllerConfig, engine: Engine) -> tuple[CentralMonitor, SysReader | None]:
    """The monitor of ``config`` (and its ``$SYS`` reader, to start and stop with the controller)."""
    central = config.central
    reader = None
    if central.mqtt is not None:
        reader = SysReader(central.mqtt, client_id=f"edgefleet-central-{config.controller_id}")
    probe = None
    if central.s3_probe is not None and config.s3 is not None:
        identity = {"access_key": central.s3_probe.access_key, "secret_key": central.s3_probe.secret_key}
        settings = replace(config.s3.settings(), **identity)
        client = probe_client(settings, central.s3_probe.timeout_s)
        probe = S3Probe(client, settings.bucket, f"{central.s3_probe.prefix}{config.controller_id}")

    def store(row: Mapping[str, Any]) -> None:
        with Session(engine) as session:
            add_sample(session, config.controller_id, row)

    def housekeeping(now: datetime) -> None:
        with Session(engine) as session:
            thin_samples(
                session,
                older_than=now - timedelta(hours=central.full_resolution_hours),
                bucket=timedelta(seconds=central.downsample_s),
            )
            prune_samples(session, before=now - timedelta(days=central.retention_days))

    monitor = CentralMonitor(
        interval_s=central.interval_s,
        host=HostSampler(disk_path(config)).read,
        store=store,
        broker=reader.figures if reader is not None else None,
        probe=probe.run if probe is not None else None,
        housekeeping=housekeeping,
    )
    return monitor, reader
