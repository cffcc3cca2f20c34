"""The controller process's composition root: store, broker connection, inbox, writer, ticker, janitor, their
supervised threads and the health/metrics endpoint.

The ingest thread loops: drain the queue (waits at most ``flush_interval_s``) → ``BatchWriter`` stores the
batch in one transaction (a message the database refuses for its data is isolated and dead-lettered; an
outage leaves the batch unacknowledged for redelivery); a reading that asks for a hotter thermal level is
decided at once, in this thread, for its site only (sites are independent in the policy). The tick thread
runs the policy over the whole fleet every ``tick_seconds`` (a slow full tick never delays ingest or a hot
agent's reaction). The janitor runs in its own thread because it talks to S3.

Each loop catches whatever one round raises (logged, counted) and goes on; a thread that dies anyway is
started again by the ``Supervisor`` with backoff, and ``/healthz`` says so meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from controller.alerting import store as alert_store
from controller.alerting.evaluator import AlertEvaluator
from controller.alerting.notify import Notifier
from controller.alerting.rules import CentralFacts
from controller.central.metrics import CentralCollector
from controller.central.monitor import CentralMonitor, build_monitor
from controller.central.readings import CentralStatus
from controller.central.sysreader import SysReader
from controller.config import ControllerConfig
from controller.recordings.events import TOPIC as EVENTS_TOPIC
from controller.recordings.events import RecordingEvents
from controller.recordings.service import catalog_loop
from controller.service.broker import BrokerConnection
from controller.service.health import ControllerStatus, HealthServer
from controller.service.inbox import Ingestor, Received
from controller.service.janitor import Janitor
from controller.service.metrics import ControllerMetrics
from controller.service.supervisor import Backoff, Supervisor
from controller.service.ticker import Ticker
from controller.service.writer import BatchWriter
from controller.store.agent_writes import IngestBatch, write_batch, write_dead_letter
from controller.store.database import answers, make_engine
from controller.store.errors import is_outage
from controller.store.housekeeping import prune_telemetry, sync_sites
from controller.store.instances import forget
from controller.store.schema import check, migrate
from controller.store.usage import USAGE_KEPT, prune_usage
from fleet_base import __version__

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
STATS_EVERY_S = 5.0
SYNC_SITES_RETRY_S = 60.0
#: how often a controller owing a redelivery asks whether its database answers again
REDELIVERY_CHECK_S = 5.0
#: the notifier looks at the outbox at least this often (and at once after each evaluation)
NOTIFY_EVERY_S = 2.0
#: tries to reach the database at start (backoff 0.5 s doubling to 10 s: about a minute and a half)
SCHEMA_ATTEMPTS = 12


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Controller:
    def __init__(
        self, config: ControllerConfig, *, stats_file: Path | None = None, restart_backoff: Backoff | None = None
    ) -> None:
        self.config = config
        self.stats_file = stats_file
        self.engine = make_engine(config.database_url)
        self.skew = timedelta(seconds=config.max_clock_skew_s)
        self.ingestor = Ingestor(sites=config.agent_sites, skew=self.skew)
        self.metrics = ControllerMetrics()
        self.ingestor.on_stored = self._observe_stored
        self.writer = BatchWriter(self.ingestor, self._store_batch, self._store_dead_letter)
        self.ticker = Ticker(
            self.engine,
            config.policy_config(),
            controller_id=config.controller_id,
            publish=self._publish,
            heartbeat_ttl_s=max(5.0, 3 * config.tick_seconds),
            stored_through=self._stored_through,
        )
        self.link = BrokerConnection(
            config.mqtt.parsed,
            controller_id=config.controller_id,
            on_message=self.ingestor.offer,
            on_connected=self._reconnected,
            shared_group=config.shared_group,
            telemetry_url=config.mqtt.telemetry,
            session_expiry_s=config.session_expiry_s,
        )
        self._stop, self._wake, self._notify = threading.Event(), threading.Event(), threading.Event()
        self.supervisor = Supervisor(self._stop, backoff=restart_backoff or Backoff())
        self.health: HealthServer | None = None
        self.tick_seconds: list[float] = []
        # ``redeliveries``: MQTT session reconnects that fetch the messages an outage left unacknowledged
        self.ticks = self.tick_errors = self.janitor_aborts = self.redeliveries = 0
        #: rounds of a loop that raised and were skipped, by thread
        self.loop_errors: Counter[str] = Counter()
        self.sites_synced = False
        self.started = time.time()
        self._mqtt_down_since: datetime | None = None
        self.alerts, self.notifier = self._alerting(config)
        self.recording_events = self._recording_events_of(config)
        self._alerts_firing: dict[str, int] = {}
        #: the central node monitor (``[central]``); ``central.latest`` is its last round (plain values)
        self.central: CentralMonitor | None = None
        self.sys_reader: SysReader | None = None
        if config.central.enabled:
            self.central, self.sys_reader = build_monitor(config, self.engine)
        #: the object store probe's latest result for the alert rules: (ok, error) or None (no probe runs)
        self.s3_probe_result: Callable[[], tuple[bool, str] | None] = self._probe_result

    def _probe_result(self) -> tuple[bool, str] | None:
        status = self._central_status()
        if status is None or status.probe is None:
            return None
        return status.probe.ok, status.probe.error

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Controller:
        self._check_schema()
        self._sync_sites()
        self.link.start()
        self.supervisor.spawn("ingest", self._ingest_loop)
        self.supervisor.spawn("tick", self._tick_loop)
        if self.config.s3 is not None:
            self.supervisor.spawn("janitor", self._janitor_loop)
            if self.config.catalog.enabled:
                self.supervisor.spawn("catalog", lambda: catalog_loop(self, self._stop))
        if self.config.alerts.enabled:
            self.supervisor.spawn("alerts", self._alerts_loop)
            self.supervisor.spawn("notify", self._notify_loop)
        if self.config.recordings_events.enabled:
            self.supervisor.spawn("recordings_events", self._recording_events_loop)
        if self.central is not None:
            self.supervisor.spawn("central", lambda: self._central_loop())
            if self.sys_reader is not None:
                self.sys_reader.start()
        self.supervisor.start()
        address = self.config.metrics.address
        if address is not None:
            try:
                self.health = HealthServer(address, self.status, self.metrics.registry).start()
                self.health.registry.register(CentralCollector(self._central_status))
            except OSError as exc:  # the fleet matters more than the endpoint: run on, loudly
                log.error("cannot serve /healthz and /metrics on %s:%d: %s", *address, exc)
        return self

    def _check_schema(self) -> None:
        """Migrate the database under the migration lock when configured to, else refuse one that is not at this
        release's revision (``SchemaError``). An unreachable database is waited for a while (raises after)."""
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                if self.config.database_migrate:
                    found = migrate(self.engine)
                    log.info("database schema at %s (was %s)", found.head, found.current or "unversioned")
                else:
                    check(self.engine)
                return
            except SQLAlchemyError as exc:
                if not is_outage(exc) or attempt + 1 == SCHEMA_ATTEMPTS:
                    raise
                log.warning("database not reachable (attempt %d): %s", attempt + 1, exc)
                time.sleep(min(10.0, 0.5 * 2**attempt))

    def stop(self, *, end_session: bool = False) -> None:
        """Stop cleanly: what was received is stored and acknowledged, then ``offline`` and disconnect. The
        broker keeps queueing for this controller's session unless ``end_session`` (retired for good)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._notify.set()
        self.supervisor.join(timeout=10)
        self.link.stop(end_session=end_session)
        if self.sys_reader is not None:
            self.sys_reader.stop()
        if self.health is not None:
            self.health.stop()
        try:
            with Session(self.engine) as session:
                forget(session, self.config.controller_id)
        except Exception as exc:
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
        """A full tick as soon as possible (tests, operator changes)."""
        self.ticker.request_full()
        self._wake.set()

    # -- storing ---------------------------------------------------------------------------------
    def _store_batch(self, batch: IngestBatch) -> None:
        with self.metrics.timed("ingest_batch"), Session(self.engine) as session:
            write_batch(session, batch, self.ticker.in_force.concurrency, sites=self.config.agent_sites, skew=self.skew)

    def _store_dead_letter(self, item: Received, reason: str, error: str) -> None:
        with self.metrics.timed("dead_letter"), Session(self.engine) as session:
            write_dead_letter(
                session,
                topic=item.topic,
                payload=item.payload,
                received=_utc(item.received),
                reason=reason,
                error=error,
                controller_id=self.config.controller_id,
            )

    def _sync_sites(self) -> None:
        """The provisioned sites into the store (the configuration may have moved agents)."""
        try:
            with Session(self.engine) as session:
                changed = sync_sites(session, self.config.agent_sites)
        except Exception as exc:
            log.error("could not apply [agent_sites] to the store (retried later): %s", exc)
            return
        self.sites_synced = True
        if changed:
            log.info("[agent_sites]: %d agents changed site", changed)

    # -- worker loops ----------------------------------------------------------------------------
    def _publish(self, assignment: Any) -> None:
        self.link.publish_assignment(assignment)

    def _reconnected(self) -> None:
        self.ticker.republish_all = True  # (a full tick: it republishes)
        self._wake.set()

    def _ingest_loop(self) -> None:
        now = time.monotonic()
        due = {"prune": now + 60, "stats": now + STATS_EVERY_S, "sites": 0.0, "redeliver": 0.0}
        while not self._stop.is_set():
            try:
                self._ingest_once()
                self._housekeeping(due)
            except Exception:
                self.loop_errors["ingest"] += 1
                log.exception("ingest round failed; going on")
        last = self.ingestor.drain(timeout=0.001)  # a clean stop stores (and acknowledges) what it received
        if len(last):
            self._write(last)

    def _ingest_once(self) -> None:
        batch = self.ingestor.drain(timeout=self.config.flush_interval_s)
        if not len(batch):
            return
        self._write(batch)
        self.ticker.note(batch)
        if self.ticker.needs_fast_tick(batch.telemetry):
            self._hot_path(batch)

    def _stored_through(self, now: datetime) -> datetime:
        return datetime.fromtimestamp(self.ingestor.stored_through(now.timestamp()), UTC)

    def _write(self, batch: IngestBatch) -> None:
        """Store ``batch`` (or dead-letter or defer its messages); either way it no longer holds the watermark."""
        try:
            self.writer.write(batch)
        finally:
            self.ingestor.settled(len(batch.raw))

    def _housekeeping(self, due: dict[str, float]) -> None:
        now = time.monotonic()
        if now >= due["prune"]:
            due["prune"] = now + PRUNE_EVERY_S
            self._prune()
        if not self.sites_synced and now >= due["sites"]:
            due["sites"] = now + SYNC_SITES_RETRY_S
            self._sync_sites()
        if self.writer.redelivery_owed and now >= due["redeliver"]:
            due["redeliver"] = now + REDELIVERY_CHECK_S
            self._redeliver()
        if self.stats_file is not None and now >= due["stats"]:
            due["stats"] = now + STATS_EVERY_S
            self._write_stats()

    def _redeliver(self) -> None:
        """Messages were left unacknowledged in a database outage: once the database answers, reconnect the MQTT
        session so the broker sends them again (while disconnected, the coming reconnect does it anyway)."""
        connected = self.link.connected.is_set()
        if connected and not answers(self.engine):
            return
        self.writer.redelivery_owed = False
        if connected:
            self.redeliveries += 1
            self.link.redeliver()

    def _hot_path(self, batch: IngestBatch) -> None:
        """A hotter reading: decide for its site(s) right here, without waiting for the next full tick."""
        sites = self.ticker.hot_sites(batch.telemetry)
        if sites is None:
            self.request_tick()
            return
        try:
            result = self.ticker.tick(datetime.now(UTC), sites=sites)
            self.metrics.tick.labels("hot").observe(result.seconds)
        except Exception as exc:
            log.error("hot-path tick failed (the next full tick decides): %s", exc, exc_info=not is_outage(exc))
            self.request_tick()

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            self._tick()
            self._wake.wait(self.config.tick_seconds)
            self._wake.clear()

    def _tick(self) -> None:
        rounds = self.ticker.changed_rounds
        try:
            result = self.ticker.round(
                datetime.now(UTC), tick_seconds=self.config.tick_seconds, full_every_s=self.config.full_tick_seconds
            )
        except Exception as exc:
            self.tick_errors += 1
            log.error(
                "tick failed (next tick in %.1f s): %s", self.config.tick_seconds, exc, exc_info=not is_outage(exc)
            )
            return
        self.ticks += 1
        if self.ticker.changed_rounds != rounds:
            self.metrics.tick.labels("changed").observe(result.seconds)
        else:
            self.metrics.tick.labels("full").observe(result.seconds)
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
            with self.metrics.timed("prune"), Session(self.engine) as session:
                removed = prune_telemetry(session, before=before)
                prune_usage(session, before=min(before, datetime.now(UTC) - USAGE_KEPT))
                alerts = alert_store.prune(session, before)
        except Exception as exc:
            log.error("pruning telemetry and alerts failed: %s", exc)
            return
        if removed or alerts:
            log.info("pruned %d telemetry samples and %d resolved alerts older than %s", removed, alerts,
                     before.isoformat())  # fmt: skip

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
                self.loop_errors["janitor"] += 1
                log.warning("janitor round failed: %s", exc)
            self.janitor_aborts = janitor.aborted
            self._stop.wait(max(0.0, s3.janitor_interval_s - 60.0))

    # -- alerts ----------------------------------------------------------------------------------
    def _alerting(self, config: ControllerConfig) -> tuple[AlertEvaluator, Notifier]:
        evaluator = AlertEvaluator(
            self.engine,
            config.alerts,
            config.policy_config(),
            controller_id=config.controller_id,
            central=self._central_facts,
            heartbeat_ttl_s=max(5.0, 3 * config.tick_seconds),
        )
        return evaluator, Notifier(self.engine, config.alerts, scopes=evaluator.scopes)

    def _central_facts(self, now: datetime) -> CentralFacts:
        connected = self.link.is_connected
        if connected:
            self._mqtt_down_since = None
        elif self._mqtt_down_since is None:
            self._mqtt_down_since = now if self.link.sessions else _utc(self.started)
        threads = {name: t.alive for name, t in self.supervisor.status().items()}
        return CentralFacts(
            self.config.controller_id,
            threads,
            connected,
            self._mqtt_down_since,
            s3_probe=self.s3_probe_result(),
            version=__version__,
        )

    def _alerts_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.metrics.timed("alerts_evaluate"):
                    done = self.alerts.run_once(datetime.now(UTC))
                self._alerts_firing = dict(Counter(f.labels.get("severity", "") for f in done.evaluation.firing))
            except Exception as exc:  # the database away, or a bug: the next round tries again
                self.loop_errors["alerts"] += 1
                log.error("alert evaluation failed: %s", exc, exc_info=not is_outage(exc))
            self._notify.set()
            self._stop.wait(self.config.alerts.evaluate_interval_s)

    def _notify_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.metrics.timed("alerts_deliver"):
                    self.notifier.deliver_due(lambda: datetime.now(UTC))
            except Exception as exc:
                self.loop_errors["notify"] += 1
                log.error("alert delivery round failed: %s", exc, exc_info=not is_outage(exc))
            self._notify.wait(NOTIFY_EVERY_S)
            self._notify.clear()

    def _recording_events_of(self, config: ControllerConfig) -> RecordingEvents:
        return RecordingEvents(
            self.engine,
            config.recordings_events,
            bucket=config.s3.bucket if config.s3 is not None else "",
            publish=lambda sent: self.link.publish_event(EVENTS_TOPIC, sent),
        )

    def _recording_events_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.metrics.timed("recording_events"):
                    self.recording_events.run_once(lambda: datetime.now(UTC))
            except Exception as exc:  # the database away, or a bug: the next round tries again
                self.loop_errors["recordings_events"] += 1
                log.error("recording events round failed: %s", exc, exc_info=not is_outage(exc))
            self._stop.wait(self.config.recordings_events.interval_s)

    def _observe_stored(self, batch: IngestBatch, stored_at: float) -> None:
        self.metrics.stored(batch, stored_at)
        for message, received in batch.telemetry:
            self.alerts.observe_offset(message.agent_id, received.timestamp() - message.sent_at.timestamp())

    # -- central node monitor ------------------------------------------------------------------
    def _central_loop(self) -> None:
        if self.central is not None:
            self.central.run(self._stop)

    def _central_status(self) -> CentralStatus | None:
        """The central monitor's last round (plain values), ``None`` before the first or when it is off."""
        return self.central.latest if self.central is not None else None

    # -- observability ---------------------------------------------------------------------------
    def status(self) -> ControllerStatus:
        """What /healthz and /metrics report (read from other threads: plain reads, no locks)."""
        s = self.ingestor.stats
        return ControllerStatus(
            controller_id=self.config.controller_id,
            threads=self.supervisor.status(),
            mqtt_connected=self.link.is_connected,
            received=s.received,
            stored=s.stored,
            rejected_by=dict(s.rejected_by),
            dead_lettered=s.dead_lettered,
            deferred=s.deferred,
            site_mismatches=s.site_mismatches,
            unknown_event_kinds=dict(s.unknown_event_kinds),
            queue=self.ingestor.backlog(),
            ticks=self.ticks,
            tick_errors=self.tick_errors,
            policy_errors=self.ticker.policy_errors,
            published=self.ticker.published_total,
            loop_errors=dict(self.loop_errors),
            version_conflicts=self.ticker.conflicts,
            janitor_aborts=self.janitor_aborts,
            mqtt_connects=self.link.sessions,
            alerts_firing=dict(self._alerts_firing),
            alert_rounds=self.alerts.rounds,
            alert_rule_failures=self.alerts.failed_agents,
            notifications={
                "delivered": self.notifier.delivered,
                "failed": self.notifier.failed_attempts,
                "given_up": self.notifier.given_up,
            },
        )

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
            "rejected_by": dict(s.rejected_by),
            "dropped": s.dropped,
            "dead_lettered": s.dead_lettered,
            "deferred": s.deferred,
            "redeliveries": self.redeliveries,
            "site_mismatches": s.site_mismatches,
            "unknown_event_kinds": dict(s.unknown_event_kinds),
            "thread_restarts": {name: t.restarts for name, t in self.supervisor.status().items()},
            "tick_errors": self.tick_errors,
            "loop_errors": dict(self.loop_errors),
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
        try:
            tmp = self.stats_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.stats(), indent=1, default=str))
            tmp.replace(self.stats_file)
        except OSError as exc:
            log.warning("cannot write the statistics file %s: %s", self.stats_file, exc)
