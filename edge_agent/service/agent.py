"""The agent service core: spool → engine, assignment → limits, engine events → events + retention, telemetry.

Single-threaded: the composition root calls ``tick(now)`` from one loop and feeds it the MQTT messages and
engine events the adapters queued. Nothing here blocks on the network; a dead broker or controller changes
nothing but the log (the agent works on with its last assignment, or the configured defaults).

No received message can stop the loop: an invalid one is counted (``invalid_messages``) and dropped, and one
that fails anyway while being applied is logged and counted (``failed_messages``). What the agent reports about
itself (readings, ages, counters, file names) is fitted into the protocol's bounds before it is sent, so a
strange reading never stops it either.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from pydantic import ValidationError

from edge_agent.engine import EngineEvent, Limits
from edge_agent.engine.encoderate import as_list
from edge_agent.service.assignment_store import AssignmentStore
from edge_agent.service.config import AgentConfig
from edge_agent.service.diskwatch import DiskWatch
from edge_agent.service.guard import LocalGuard
from edge_agent.service.ledger import Ledger
from edge_agent.service.limits import MemoryBox, limits_from_defaults, within_memory
from edge_agent.service.ports import (
    Capabilities,
    EnginePort,
    FinishedCheck,
    HostProbe,
    HostSample,
    MeasuresRoundTrip,
    Publisher,
    Verdict,
)
from edge_agent.service.retention import Outcome, apply_retention
from edge_agent.service.spool import FileStatus, SpoolEntry, SpoolTracker, list_spool
from fleet_base import __version__
from fleet_base.filenames import display_name, safe_text
from fleet_protocol.bounds import fit
from fleet_protocol.codec import decode, decode_controller_state
from fleet_protocol.errors import ProtocolError
from fleet_protocol.messages import Assignment, Birth, Event, Message, State, Telemetry
from fleet_protocol.numbers import MAX_RATE_BPS
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
_VOLATILE = {"seq", "sent_at"}


@dataclass
class Counters:
    invalid_messages: int = 0
    failed_messages: int = 0
    queue_failures: int = 0
    files_queued: int = 0
    files_rejected: int = 0
    files_removed: int = 0
    file_errors: int = 0  # unexpected errors while handling one file (it is set aside and retried later)


class AgentService:
    def __init__(
        self,
        config: AgentConfig,
        *,
        engine: EnginePort,
        publisher: Publisher,
        host: HostProbe,
        check_finished: FinishedCheck,
        capabilities: Capabilities,
        store: AssignmentStore,
        ledger: Ledger,
        seq: Iterator[int] | None = None,
        simulated: bool = False,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.simulated = simulated
        self.config = config
        self.engine = engine
        self.publisher = publisher
        self.host = host
        self.check_finished = check_finished
        self.capabilities = capabilities
        self.store = store
        self.ledger = ledger
        self.tracker = SpoolTracker(config.settle_seconds)
        self.counters = Counters()
        self.assignment: Assignment | None = None
        self.connected = connected  # is the broker link up (the local guard's half of "controller contact")
        self.memory = MemoryBox(
            capabilities.memory_limit_bytes or capabilities.ram_bytes, capabilities.baseline_rss_bytes
        )
        self.guard = LocalGuard(config.local_guard, 0.0)
        self.limits: Limits = within_memory(limits_from_defaults(config.defaults), self.memory, "[defaults]")
        self.controller_online: bool | None = None
        self.disk = DiskWatch(config.min_free_bytes, config.min_free_hysteresis_bytes)
        self._seq = seq if seq is not None else itertools.count()
        self._next_scan = 0.0
        self._next_telemetry = 0.0
        self._backoff = 0.0
        self._spool_unreadable = False
        self.assignment_topic = agent_topic(config.agent_id, AgentChannel.ASSIGNMENT)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        self.guard = LocalGuard(self.config.local_guard, now)
        stored = self.store.load(self.config.agent_id)
        if stored is not None:
            self.assignment = stored
            self.limits = self._limits()
            log.info("resuming with stored assignment v%d", stored.version)
        else:
            log.info("no stored assignment: using the configured defaults until the controller sends one")
        known = self._load_ledger()
        self.tracker.restore(known, now)
        self._reoffer_queued(known, now)
        self.engine.set_limits(self.limits)
        self.engine.set_assigned(self.assignment is not None)
        self.engine.start()

    def _reoffer_queued(self, known: dict[str, tuple[SpoolEntry, FileStatus]], now: float) -> None:
        """Hand every file the ledger calls queued to the engine again (idempotent there). A file the engine
        finished just before a crash, before its completion event reached us, comes back as already stored,
        so its retention is applied now instead of never."""
        for name, (entry, status) in known.items():
            path = self.config.spool_dir / name
            if status == FileStatus.QUEUED and not self._guarded(entry, now, partial(self._enqueue, entry, path, now)):
                return

    def _load_ledger(self) -> dict[str, tuple[SpoolEntry, FileStatus]]:
        """The ledger, pruned of files that are no longer in the spool (so it never grows without bound)."""
        known = self.ledger.load()
        try:
            present = {e.name for e in list_spool(self.config.spool_dir, self.config.spool_suffixes)}
        except OSError:
            return known
        gone = [name for name in known if name not in present]
        if gone:
            try:
                self.ledger.forget(gone)
            except sqlite3.Error as exc:
                log.warning("cannot prune the spool ledger: %s", exc)
        return {name: value for name, value in known.items() if name in present}

    def stop_engine(self, timeout: float) -> None:
        """No new parts; parts in flight get ``timeout`` seconds; the journal keeps the rest for the next start.
        Events of the last moments are still queued for ``handle_engine_event`` before ``close``."""
        self.engine.stop(timeout)

    def close(self) -> None:
        self.engine.close()
        self.ledger.close()

    def stop(self, timeout: float) -> None:
        self.stop_engine(timeout)
        self.close()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (self.assignment_topic, CONTROLLER_STATE_TOPIC)

    # -- outgoing messages -------------------------------------------------------------------------------------
    def next_seq(self) -> int:
        return next(self._seq)

    def _probed_rates(self) -> list[float]:
        """The start-up probe's encode rates per level, as the wire carries them (telemetry falls back to them
        while the engine reports none: the controller keeps the latest list it was sent)."""
        return as_list(self.capabilities.encode_bps_by_level, MAX_RATE_BPS)

    def birth(self) -> Birth:
        caps = self.capabilities
        values = fit(
            Birth,
            model=caps.model,
            cores=caps.cores,
            ram_bytes=caps.ram_bytes,
            disk_bytes=caps.disk_bytes,
            software_version=__version__,
            flac_encode_bps=caps.flac_encode_bps,
            encode_cores=caps.encode_cores,
            bucket=self.config.s3.bucket,
            prefix=self.config.s3.prefix,
            site=self.config.site,
            memory_limit_bytes=caps.memory_limit_bytes,
            baseline_rss_bytes=caps.baseline_rss_bytes,
        )
        return Birth(
            agent_id=self.config.agent_id,
            seq=self.next_seq(),
            simulated=self.simulated,
            encode_bps_by_level=self._probed_rates(),
            **values,
        )

    def state(self, status: AgentStatus) -> State:
        return State(agent_id=self.config.agent_id, seq=self.next_seq(), state=status)

    def on_connected(self) -> list[Message]:
        """What to publish on every (re)connect: birth and ``online``, both retained."""
        return [self.birth(), self.state(AgentStatus.ONLINE)]

    # -- incoming messages -------------------------------------------------------------------------------------
    def handle_message(self, topic: str, payload: bytes) -> None:
        try:
            if topic == self.assignment_topic:
                if not payload:
                    log.info("retained assignment cleared; keeping the current limits")
                    return
                message = decode(topic, payload)
                if isinstance(message, Assignment):
                    self.apply_assignment(message)
            elif topic == CONTROLLER_STATE_TOPIC:
                if payload:
                    self._controller_state(decode_controller_state(topic, payload).state)
            else:
                log.debug("ignoring message on %s", topic)
        except ProtocolError as exc:
            self.counters.invalid_messages += 1
            log.warning("invalid message on %s (%d so far): %s", topic, self.counters.invalid_messages, exc)
        except Exception:  # a bug must not stop the agent either: log it, count it, go on
            self.counters.failed_messages += 1
            log.exception("applying a message on %s failed (%d so far)", topic, self.counters.failed_messages)

    def _controller_state(self, status: AgentStatus) -> None:
        online = status == AgentStatus.ONLINE
        if online != self.controller_online:
            version = self.assignment.version if self.assignment else None
            log.info("controller is %s; working with assignment %s", status.value, version or "defaults")
        self.controller_online = online

    def apply_assignment(self, assignment: Assignment) -> None:
        current = self.assignment
        if current is not None and current.model_dump(exclude=_VOLATILE) == assignment.model_dump(exclude=_VOLATILE):
            return  # the retained copy again, e.g. after a reconnect
        if current is not None and assignment.version < current.version:
            log.warning("assignment version went back %d -> %d; applying it", current.version, assignment.version)
        self.assignment = assignment
        self.limits = self._limits()
        self.engine.set_limits(self.limits)
        self.engine.set_assigned(True)
        log.info("applied assignment v%d: %s (%s)", assignment.version, self.limits, assignment.reason)
        try:
            self.store.save(assignment)
        except OSError as exc:
            log.error("cannot persist assignment v%d: %s (applied in memory only)", assignment.version, exc)

    def _limits(self) -> Limits:
        """What the engine runs with: the assignment in force (or the ``[defaults]``), as the local guard allows
        while it is on, within the agent's memory limit (``limits.within_memory``)."""
        if self.assignment is None:
            base, what = limits_from_defaults(self.config.defaults), "[defaults]"
        else:
            base, what = self.assignment.settings, f"assignment v{self.assignment.version}"
        if self.guard.active:
            base, what = self.guard.apply(base), f"{what} under the local guard"
        return within_memory(base, self.memory, what)

    def _refresh_limits(self) -> None:
        limits = self._limits()
        if limits != self.limits:
            self.limits = limits
            self.engine.set_limits(limits)
            log.info("limits now %s (local guard %s: %s)", limits, "on" if self.guard.active else "off", self.guard.why)

    def _watch_contact(self, now: float) -> None:
        """Controller contact: the link is up and the controller says it is online. Lost for long enough, the
        local guard takes over (stepping at once on a fresh reading); back, the assignment applies again."""
        if self.guard.contact(self.connected() and self.controller_online is True, now):
            if self.guard.active:
                self.guard.observe(self.host.sample(), now)
            self._refresh_limits()

    # -- engine events -----------------------------------------------------------------------------------------
    def handle_engine_event(self, event: EngineEvent) -> None:
        """Publish it; on ``UPLOAD_COMPLETED`` (sent by the engine only for a completed AND verified object)
        apply the retention policy to the file, if it is one of our spool's. Never raises: an unexpected error
        is logged and counted, the file stays where it is."""
        try:
            self._on_engine_event(event)
        except Exception:
            self.counters.file_errors += 1
            log.exception("cannot handle the %s event of %s", event.kind.value, display_name(event.file))

    def _on_engine_event(self, event: EngineEvent) -> None:
        self._publish_event(event)
        path = Path(event.file)
        if path.parent.resolve() != self.config.spool_dir.resolve():
            return
        entry = self.tracker.handled(path.name)
        if event.kind == EventKind.FILE_REJECTED and entry is not None:
            self._record(entry, FileStatus.REJECTED)
        elif event.kind == EventKind.UPLOAD_COMPLETED:
            log.info("%s stored as %s", display_name(path.name), event.key)
            self._retain(path.name, path, entry)

    def _retain(self, name: str, path: Path, entry: SpoolEntry | None) -> None:
        try:
            outcome = apply_retention(self.config.retention, path, entry, self.config.done_dir)
        except OSError as exc:
            log.error(
                "retention %s of %s failed: %s; the file stays",
                self.config.retention,
                display_name(name),
                safe_text(str(exc)),
            )
            outcome = Outcome.KEPT
        log.info("retention of %s: %s", display_name(name), outcome.value)
        if outcome in (Outcome.DELETED, Outcome.MOVED, Outcome.MISSING):
            self.counters.files_removed += outcome != Outcome.MISSING
            self._forget(name)
        elif outcome == Outcome.KEPT and entry is not None:
            self._record(entry, FileStatus.DONE)

    def _publish_event(self, event: EngineEvent) -> None:
        """As a ``fleet_protocol.Event``: the file name escaped to printable UTF-8 (``display_name``)."""
        try:
            values = fit(
                Event,
                file=display_name(Path(event.file).name),
                key=safe_text(event.key),
                original_bytes=event.original_bytes,
                stored_bytes=event.stored_bytes,
                duration_s=event.duration_s,
                retries=event.retries,
                reason=safe_text(event.reason)[:1000],
            )
            message = Event(
                agent_id=self.config.agent_id,
                seq=self.next_seq(),
                kind=event.kind,
                original_sha256=event.original_sha256,
                stored_as="raw" if event.stored_as == "zstd" else event.stored_as,
                stored_codec="zstd" if event.stored_as == "zstd" else "",
                **values,
            )
        except ValidationError as exc:
            log.error("cannot describe engine event %s: %s", safe_text(repr(event)), exc)
            return
        self.publisher.publish(message)

    # -- spool -------------------------------------------------------------------------------------------------
    def _record(self, entry: SpoolEntry, status: FileStatus) -> None:
        self.tracker.mark(entry, status)
        try:
            self.ledger.put(entry, status)
        except sqlite3.Error as exc:
            log.error("cannot record %s as %s in the ledger: %s", display_name(entry.name), status.value, exc)

    def _forget(self, name: str) -> None:
        try:
            self.ledger.forget([name])
        except sqlite3.Error as exc:
            log.error("cannot update the ledger for %s: %s", display_name(name), exc)

    def scan(self, now: float) -> None:
        spool = self.config.spool_dir
        try:
            entries = list_spool(spool, self.config.spool_suffixes)
        except OSError as exc:
            if not self._spool_unreadable:  # once per outage, not every scan
                log.error("cannot list spool folder %s: %s (will keep trying)", spool, exc)
            self._spool_unreadable = True
            return
        if self._spool_unreadable:
            log.info("spool folder %s is readable again", spool)
            self._spool_unreadable = False
        for entry in self.tracker.observe(entries, now):
            if not self._guarded(entry, now, partial(self._take, entry, spool / entry.name, now)):
                return
        self._backoff = 0.0

    def _take(self, entry: SpoolEntry, path: Path, now: float) -> bool:
        """Check one settled file and queue it; False when queueing failed (disk full: stop this scan)."""
        verdict, reason = self.check_finished(path)
        if verdict == Verdict.NOT_READY:
            self.tracker.not_ready(entry.name, now)
        elif verdict == Verdict.REJECTED:
            self.counters.files_rejected += 1
            log.warning("rejected %s: %s", display_name(entry.name), safe_text(reason))
            self._record(entry, FileStatus.REJECTED)
            self._publish_event(
                EngineEvent(EventKind.FILE_REJECTED, str(path), original_bytes=entry.size, reason=reason)
            )
        else:
            return self._enqueue(entry, path, now)
        return True

    def _guarded(self, entry: SpoolEntry, now: float, handle: Callable[[], bool]) -> bool:
        """Run one file's handling. An unexpected error never stops the agent: it is logged and counted, the
        file is set aside (offered again after 30 s, doubling up to 1 h, or as soon as it changes), an
        ``upload_failed`` event names it, and the other files go on."""
        try:
            return handle()
        except Exception as exc:
            self.counters.file_errors += 1
            retry_at = self.tracker.set_aside(entry.name, now)
            name = display_name(entry.name)
            log.exception(
                "%s: unexpected error (%d so far); set aside for %.0f s",
                name,
                self.counters.file_errors,
                retry_at - now,
            )
            reason = f"set aside after an unexpected error: {type(exc).__name__}: {exc}"
            event = EngineEvent(EventKind.UPLOAD_FAILED, str(self.config.spool_dir / entry.name), reason=reason)
            try:
                self._publish_event(replace(event, original_bytes=entry.size))
            except Exception:
                log.exception("%s: cannot publish the failure event", name)
            return True

    def _enqueue(self, entry: SpoolEntry, path: Path, now: float) -> bool:
        try:
            queued = self.engine.enqueue(path)
        except (OSError, sqlite3.Error) as exc:
            self.counters.queue_failures += 1
            self._backoff = min(MAX_BACKOFF_S, max(1.0, self._backoff * 2))
            self._next_scan = now + self._backoff
            log.error(
                "cannot queue %s: %s (local disk full?). Nothing is lost: the file stays in the spool; retry in %.0f s",
                display_name(entry.name),
                exc,
                self._backoff,
            )
            return False
        if queued:
            self.counters.files_queued += 1
            self._record(entry, FileStatus.QUEUED)
        else:  # the engine's journal: stored and verified before with this size and mtime
            log.info("%s is already stored; applying retention", display_name(entry.name))
            self._record(entry, FileStatus.DONE)
            self._retain(entry.name, path, entry)
        return True

    # -- telemetry ---------------------------------------------------------------------------------------------
    def telemetry(self, host: HostSample | None = None) -> Telemetry:
        host = host if host is not None else self.host.sample()
        stats = self.engine.stats()
        self._watch_disk(host.disk_free_bytes)
        values = fit(
            Telemetry,
            temperature_c=host.temperature_c,
            throttled=host.throttled,
            cpu_percent=host.cpu_percent,
            mem_available_bytes=host.mem_available_bytes,
            disk_free_bytes=host.disk_free_bytes,
            backlog_files=stats.backlog_files,
            backlog_bytes=stats.backlog_bytes,
            backlog_oldest_age_s=stats.oldest_age_s,
            active_uploads=stats.active_uploads,
            throughput_bps=stats.throughput_bps,
            bytes_uploaded_total=stats.bytes_uploaded_total,
            retries_total=stats.retries_total,
            errors_total=stats.errors_total + self.counters.file_errors,  # the engine's and ours
            assignment_version=self.assignment.version if self.assignment else 0,
            backlog_eta_s=stats.backlog_eta_s,
            mqtt_rtt_s=self.publisher.round_trip_s() if isinstance(self.publisher, MeasuresRoundTrip) else None,
            s3_ttfb_s=stats.s3_ttfb_s,
            process_cpu_percent=host.process_cpu_percent,
            process_rss_bytes=host.process_rss_bytes,
        )
        return Telemetry(
            agent_id=self.config.agent_id,
            seq=self.next_seq(),
            encode_bps_by_level=list(stats.encode_bps_by_level) or self._probed_rates(),
            compression_ratio_by_level=list(stats.compression_ratio_by_level),
            **values,
        )

    @property
    def disk_low(self) -> bool:
        return self.disk.low

    def _watch_disk(self, free: int) -> None:
        """A ``disk_low`` event (and a warning) once per drop below ``min_free_bytes``; an info line when the
        free space is back above it plus ``min_free_hysteresis_bytes``."""
        was_low = self.disk.low
        if self.disk.observe(free):
            threshold = self.config.min_free_bytes
            reason = f"spool disk: {free / 2**20:.1f} MiB free, below the threshold of {threshold / 2**20:.1f} MiB"
            log.warning("%s", reason)
            self._publish_event(EngineEvent(EventKind.DISK_LOW, "", reason=reason))
        elif was_low and not self.disk.low:
            log.info("free disk %d bytes is above the watermark again", free)

    # -- the loop body -----------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if now >= self._next_scan:
            self._next_scan = now + self.config.scan_interval_s
            self.scan(now)
        self._watch_contact(now)
        if now >= self._next_telemetry:
            self._next_telemetry = now + self.config.telemetry_interval_s
            sample = self.host.sample()
            if self.guard.observe(sample, now):
                self._refresh_limits()
            self.publisher.publish(self.telemetry(sample))
