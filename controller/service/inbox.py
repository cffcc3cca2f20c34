"""The controller's inbox: received MQTT messages queued, then decoded into a batch of validated protocol
messages; invalid ones counted and logged.

The MQTT network thread only appends a ``Received(topic, payload, received_at, ack)`` to a queue
(``offer``); the controller's ingest thread decodes and groups them (``drain``) and writes each batch in one
transaction, then calls the batch's ``acks`` (QoS 1 delivery receipts: a message is confirmed to the
broker only once it is stored). A bad message never raises: it becomes a reject counted per
``<channel>:<error>`` (and is acknowledged with its batch: sending it again would not make it valid).
A birth that names another site than the agent is provisioned for is stored (its site is not used) and
counted as a site mismatch.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from controller.store.agent_writes import DEFAULT_SKEW, IngestBatch, observed_at
from fleet_protocol.codec import decode
from fleet_protocol.errors import ProtocolError
from fleet_protocol.messages import Birth, Event, State, Telemetry
from fleet_protocol.topics import AgentChannel
from fleet_protocol.vocabulary import known_event_kind

log = logging.getLogger(__name__)

#: Log at most this many rejects in full per minute; the counter keeps counting.
REJECT_LOG_PER_MINUTE = 20
#: unknown event kinds counted by name (a metric label each); more distinct kinds count as ``OTHER_KINDS``
UNKNOWN_KINDS_TRACKED = 32
OTHER_KINDS = "(other)"


class Received(NamedTuple):
    topic: str
    payload: bytes
    received: float
    ack: Callable[[], None] | None


def channel_of(topic: str) -> str:
    last = topic.rsplit("/", 1)[-1]
    return last if last in AgentChannel.__members__.values() else "unknown"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    rejected: int = 0
    #: rejected messages by reason: ``<channel>:<error>`` (invalid) or ``<channel>:Unstorable`` (dead letter)
    rejected_by: dict[str, int] = field(default_factory=dict)
    #: valid messages the database refused for their data: dead-lettered and acknowledged
    dead_lettered: int = 0
    #: messages not stored because the database was away: not acknowledged, the broker delivers them again
    deferred: int = 0
    #: births naming another site than the provisioned one
    site_mismatches: int = 0
    #: events of a kind this release does not know (a newer agent's), stored as they came; by kind, at most
    #: ``UNKNOWN_KINDS_TRACKED`` kinds by name, the rest under ``OTHER_KINDS``
    unknown_event_kinds: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    #: (stored at, seconds from sent_at to stored) of recent telemetry
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=200_000))

    @property
    def dropped(self) -> int:
        """Not stored, for either reason (the statistics file's name for it)."""
        return self.dead_lettered + self.deferred

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.rejected_by = {**self.rejected_by, reason: self.rejected_by.get(reason, 0) + 1}  # readers copy-free

    def unknown_kind(self, kind: str) -> None:
        name = (
            kind
            if kind in self.unknown_event_kinds or len(self.unknown_event_kinds) < UNKNOWN_KINDS_TRACKED
            else OTHER_KINDS
        )
        self.unknown_event_kinds = {**self.unknown_event_kinds, name: self.unknown_event_kinds.get(name, 0) + 1}

    def lag_summary(self, since: float = 0.0) -> dict[str, float]:
        values = [lag for stored_at, lag in list(self.lags) if stored_at >= since]
        return {
            "count": float(len(values)),
            "p50_s": percentile(values, 0.50),
            "p99_s": percentile(values, 0.99),
            "max_s": max(values) if values else math.nan,
        }


class _RateLimitedLog:
    """At most ``per_minute`` warnings a minute; the counters keep counting."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._window = (0.0, 0)

    def warning(self, message: str, *args: object) -> None:
        minute, logged = self._window
        now = time.monotonic()
        if now - minute > 60:
            minute, logged = now, 0
        if logged < self.per_minute:
            log.warning(message, *args)
        self._window = (minute, logged + 1)


class Ingestor:
    def __init__(self, *, sites: Mapping[str, str] | None = None, skew: timedelta = DEFAULT_SKEW) -> None:
        """``sites``: the provisioned site per agent (to notice births that claim another); ``skew``: how far
        ahead of its arrival a message's ``sent_at`` may be (see ``controller.store.agent_writes.observed_at``)."""
        self._queue: queue.SimpleQueue[Received] = queue.SimpleQueue()
        #: arrival times of the messages offered and not yet settled, oldest first (``stored_through``)
        self._pending: deque[float] = deque()
        self.stats = IngestStats()
        self.sites = dict(sites or {})
        self.skew = skew
        self._log = _RateLimitedLog(REJECT_LOG_PER_MINUTE)
        #: told of every committed batch and its commit time (metrics, clock offsets); must not raise
        self.on_stored: Callable[[IngestBatch, float], None] | None = None

    def offer(
        self, topic: str, payload: bytes, received: float | None = None, ack: Callable[[], None] | None = None
    ) -> None:
        """Called from the MQTT thread: cheap, never raises. ``ack``: to call once the message is stored."""
        at = time.time() if received is None else received
        self._pending.append(at)  # before the queue: a message in the queue is always pending
        self._queue.put(Received(topic, payload, at, ack))

    def settled(self, count: int) -> None:
        """The ingest thread is done with the oldest ``count`` drained messages: stored, dead-lettered, or left
        unacknowledged for the broker to deliver again (they come back as new messages)."""
        for _ in range(min(count, len(self._pending))):
            self._pending.popleft()

    def stored_through(self, now: float) -> float:
        """Every message that arrived before this time is settled (``now`` when nothing is pending): how far
        the store is behind the wire. The ticker measures silence against it, so a stalled ingest does not make
        agents look silent."""
        try:
            oldest = self._pending[0]
        except IndexError:
            return now
        return min(now, oldest)

    def backlog(self) -> int:
        return self._queue.qsize()

    def drain(self, timeout: float, max_items: int = 20_000) -> IngestBatch:
        """Everything queued now (waiting up to ``timeout`` for the first message), decoded and counted."""
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return IngestBatch()
        while len(items) < max_items:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return self._decode(items, count=True)

    def rebatch(self, items: Iterable[Received]) -> IngestBatch:
        """Received items of a batch decoded again as a batch of their own (counted once already, by ``drain``)."""
        return self._decode(items, count=False)

    def _decode(self, items: Iterable[Received], *, count: bool) -> IngestBatch:
        batch = IngestBatch()
        for item in items:
            batch.raw.append(item)
            if item.ack is not None:
                batch.acks.append(item.ack)
            if count:
                self.stats.received += 1
            self._add(batch, item, count=count)
        return batch

    def _add(self, batch: IngestBatch, item: Received, *, count: bool) -> None:
        at = datetime.fromtimestamp(item.received, UTC)
        try:
            message = decode(item.topic, item.payload)
        except ProtocolError as exc:
            self._reject(batch, item.topic, type(exc).__name__, str(exc), at, count=count)
            return
        except Exception as exc:  # a decoder bug must not stop ingest either
            self._reject(batch, item.topic, f"internal {type(exc).__name__}", str(exc), at, count=count)
            return
        if isinstance(message, Telemetry):
            batch.telemetry.append((message, at))
        elif isinstance(message, Birth):
            if count:
                self._check_site(message)
            batch.births.append((message, at))
        elif isinstance(message, State):
            batch.states.append((message, at))
        elif isinstance(message, Event):
            if count and known_event_kind(message.kind) is None:
                self.stats.unknown_kind(message.kind)
                self._log.warning(
                    "agent %s sent an event of unknown kind %r: stored as it came", message.agent_id, message.kind
                )
            batch.events.append((message, at))
        else:
            detail = f"{type(message).__name__} is not ingested"
            self._reject(batch, item.topic, "UnexpectedChannel", detail, at, count=count)

    def _check_site(self, birth: Birth) -> None:
        provisioned = self.sites.get(birth.agent_id, "")
        if birth.site and birth.site != provisioned:
            self.stats.site_mismatches += 1
            self._log.warning(
                "agent %s reports site %r but is provisioned for %r: the provisioned site applies",
                birth.agent_id,
                birth.site[:128],
                provisioned,
            )

    def _reject(self, batch: IngestBatch, topic: str, error: str, detail: str, at: datetime, *, count: bool) -> None:
        kind = f"{channel_of(topic)}:{error}"
        batch.reject(kind, detail, topic, at)
        if count:
            self.stats.reject(kind)
            self._log.warning("rejected message on %r: %s", topic[:200], detail[:500])

    def stored(self, batch: IngestBatch, stored_at: float) -> None:
        """Record what a committed batch did (lag = commit time − sent_at, telemetry only)."""
        self.stats.batches += 1
        self.stats.stored += len(batch) - len(batch.rejects)
        for message, received in batch.telemetry:
            sent = observed_at(message.sent_at, received, self.skew)
            self.stats.lags.append((stored_at, stored_at - sent.timestamp()))
        if self.on_stored is not None:
            try:
                self.on_stored(batch, stored_at)
            except Exception:  # observing must never cost a stored batch its acknowledgement
                log.exception("observing a stored batch failed")

    def dead_lettered(self, reason: str) -> None:
        """Count a message that could not be stored (kept as a dead letter under ``reason``)."""
        self.stats.dead_lettered += 1
        self.stats.reject(reason)
