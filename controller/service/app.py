"""The controller process's composition root: store, MQTT link, ingest, ticker, janitor and their threads.

The ingest thread loops: drain the queue (waits at most ``flush_interval_s``) → write the batch in one
transaction; a reading that asks for a hotter thermal level is decided at once, in this thread, for
its site only (sites are independent in the policy). The tick thread runs the policy over the whole
fleet every ``tick_seconds`` (a slow full tick never delays ingest or a hot agent's reaction).
The janitor runs in its own thread because it talks to S3. Database errors are logged and retried;
nothing received over MQTT can stop the loop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from controller.config import ControllerConfig
from controller.service.ingest import Ingestor
from controller.service.janitor import Janitor
from controller.service.mqtt_link import MqttLink
from controller.service.ticker import Ticker
from controller.store.engine import create_all, make_engine
from controller.store.ingest import IngestBatch, prune_telemetry, write_batch
from controller.store.instances import forget

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
WRITE_ATTEMPTS = 3


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Controller:
    def __init__(self, config: ControllerConfig, *, stats_file: Path | None = None) -> None:
        self.config = config
        self.stats_file = stats_file
        self.engine = make_engine(config.database_url)
        self.ingestor = Ingestor()
        self.ticker = Ticker(
            self.engine,
            config.policy_config(),
            controller_id=config.controller_id,
            publish=self._publish,
            heartbeat_ttl_s=max(5.0, 3 * config.tick_seconds),
        )
        self.link = MqttLink(
            config.mqtt.parsed,
            controller_id=config.controller_id,
            on_message=self.ingestor.offer,
            on_connected=self._reconnected,
            shared_group=config.shared_group,
            session_expiry_s=config.session_expiry_s,
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tick_seconds: list[float] = []
        self.started = time.time()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Controller:
        for attempt in range(5):  # two controllers starting together may race on CREATE TABLE
            try:
                create_all(self.engine)
                break
            except SQLAlchemyError as exc:
                log.info("create tables (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.5)
        self.link.start()
        self._spawn(self._ingest_loop, "controller-ingest")
        self._spawn(self._tick_loop, "controller-tick")
        if self.config.s3 is not None:
            self._spawn(self._janitor_loop, "controller-janitor")
        return self

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, *, end_session: bool = False) -> None:
        """Stop cleanly: what was received is stored and acknowledged, then ``offline`` and disconnect. The
        broker keeps queueing for this controller's session unless ``end_session`` (retired for good)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.link.stop(end_session=end_session)
        try:
            with Session(self.engine) as session:
                forget(session, self.config.controller_id)
        except SQLAlchemyError as exc:
            log.warning("could not remove the heartbeat: %s", exc)
        self._write_stats()
        self.engine.dispose()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def request_tick(self) -> None:
        """Tick as soon as possible (tests, operator changes)."""
        self._wake.set()

    # -- worker ----------------------------------------------------------------------------------
    def _publish(self, assignment: Any) -> None:
        self.link.publish_assignment(assignment)

    def _reconnected(self) -> None:
        self.ticker.republish_all = True
        self._wake.set()

    def _write(self, batch: IngestBatch) -> None:
        error: SQLAlchemyError | None = None
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with Session(self.engine) as session:
                    write_batch(session, batch, self.ticker.concurrency)
                self.ingestor.stored(batch, time.time())
                for ack in batch.acks:  # stored: now the broker may forget them
                    ack()
                return
            except SQLAlchemyError as exc:
                error = exc
                log.error("storing %d messages failed (attempt %d): %s", len(batch), attempt + 1, exc)
                time.sleep(0.5 * (attempt + 1))
        if isinstance(error, OperationalError | InterfaceError | DisconnectionError):
            # The database is away. Not acknowledged: the broker delivers these again on the next connection
            # (the store drops what it already has), so an outage loses nothing the broker still queues.
            self.ingestor.stats.dropped += len(batch)
            return
        self._write_each(batch)

    def _write_each(self, batch: IngestBatch) -> None:
        """The batch failed for something in its data: store it message by message. A message that cannot be
        stored is dropped (counted, logged) and acknowledged: sending it again would not make it fit."""
        for item in batch.raw:
            single = self.ingestor.single(item)
            try:
                with Session(self.engine) as session:
                    write_batch(session, single, self.ticker.concurrency)
                self.ingestor.stored(single, time.time())
            except SQLAlchemyError as exc:
                self.ingestor.stats.dropped += 1
                log.error("dropped a message on %r that cannot be stored: %s", item[0][:200], exc)
            for ack in single.acks:
                ack()

    def _ingest_loop(self) -> None:
        next_prune = time.monotonic() + 60
        next_stats = time.monotonic() + 5
        while not self._stop.is_set():
            batch = self.ingestor.drain(timeout=self.config.flush_interval_s)
            if len(batch):
                self._write(batch)
                if self.ticker.needs_fast_tick(batch.telemetry):
                    self._hot_path(batch)
            now = time.monotonic()
            if now >= next_prune:
                self._prune()
                next_prune = now + PRUNE_EVERY_S
            if self.stats_file is not None and now >= next_stats:
                self._write_stats()
                next_stats = now + 5
        last = self.ingestor.drain(timeout=0.001)  # a clean stop stores (and acknowledges) what it received
        if len(last):
            self._write(last)

    def _hot_path(self, batch: IngestBatch) -> None:
        """A hotter reading: decide for its site(s) right here, without waiting for the next full tick."""
        sites = self.ticker.hot_sites(batch.telemetry)
        if sites is None:
            self._wake.set()
            return
        try:
            self.ticker.tick(datetime.now(UTC), sites=sites)
        except SQLAlchemyError as exc:
            log.error("hot-path tick failed: %s", exc)
            self._wake.set()

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            self._tick()
            self._wake.wait(self.config.tick_seconds)
            self._wake.clear()

    def _tick(self) -> None:
        try:
            result = self.ticker.tick(datetime.now(UTC))
        except SQLAlchemyError as exc:
            log.error("tick failed: %s", exc)
            return
        self.tick_seconds.append(result.seconds)
        del self.tick_seconds[:-1000]
        if result.published or result.went_offline:
            log.info(
                "tick: %d live, %d assignments published, %d went offline (%.0f ms)",
                result.live,
                result.published,
                result.went_offline,
                result.seconds * 1000,
            )

    def _prune(self) -> None:
        before = datetime.now(UTC) - timedelta(days=self.config.telemetry_retention_days)
        try:
            with Session(self.engine) as session:
                removed = prune_telemetry(session, before=before)
        except SQLAlchemyError as exc:
            log.error("pruning telemetry failed: %s", exc)
            return
        if removed:
            log.info("pruned %d telemetry samples older than %s", removed, before.isoformat())

    # -- janitor ---------------------------------------------------------------------------------
    def _janitor_loop(self) -> None:
        s3 = self.config.s3
        assert s3 is not None
        janitor = Janitor(s3.settings().client(), s3.bucket, timedelta(hours=s3.stale_upload_hours))
        while not self._stop.wait(min(60.0, s3.janitor_interval_s)):
            try:
                with Session(self.engine) as session:
                    janitor.run(session, datetime.now(UTC))
            except Exception as exc:  # S3 or database away: try again next round
                log.warning("janitor round failed: %s", exc)
            self._stop.wait(max(0.0, s3.janitor_interval_s - 60.0))

    # -- observability ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        s = self.ingestor.stats
        ticks = sorted(self.tick_seconds)
        return {
            "controller_id": self.config.controller_id,
            "pid": os.getpid(),
            "uptime_s": time.time() - self.started,
            "received": s.received,
            "stored": s.stored,
            "rejected": s.rejected,
            "dropped": s.dropped,
            "batches": s.batches,
            "queue": self.ingestor.backlog(),
            "ingest_lag": s.lag_summary(),
            "ingest_lag_last_60s": s.lag_summary(since=time.time() - 60),
            "tick_p50_s": ticks[len(ticks) // 2] if ticks else None,
            "tick_max_s": ticks[-1] if ticks else None,
            "published": self.ticker.published_total,
            "version_conflicts": self.ticker.conflicts,
        }

    def _write_stats(self) -> None:
        if self.stats_file is None:
            return
        tmp = self.stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1, default=str))
        tmp.replace(self.stats_file)
