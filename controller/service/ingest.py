"""Received MQTT messages → validated protocol messages in a batch; invalid ones counted and logged.

The MQTT network thread only appends ``(topic, payload, received_at, ack)`` to a queue (``offer``); the
controller's worker thread decodes and groups them (``drain``) and writes each batch in one
transaction, then calls the batch's ``acks`` (QoS 1 delivery receipts: a message is confirmed to the
broker only once it is stored). A bad message never raises: it becomes a reject counted per
``<channel>:<error>`` (and is acknowledged with its batch: sending it again would not make it valid).
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.store.ingest import IngestBatch
from fleet_protocol import AgentChannel, Birth, Event, ProtocolError, State, Telemetry, decode

log = logging.getLogger(__name__)

#: Log at most this many rejects in full per minute; the counter keeps counting.
REJECT_LOG_PER_MINUTE = 20


def _channel_of(topic: str) -> str:
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
    dropped: int = 0
    batches: int = 0
    #: (stored at, seconds from sent_at to stored) of recent telemetry
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=200_000))

    def lag_summary(self, since: float = 0.0) -> dict[str, float]:
        values = [lag for stored_at, lag in self.lags if stored_at >= since]
        return {
            "count": float(len(values)),
            "p50_s": percentile(values, 0.50),
            "p99_s": percentile(values, 0.99),
            "max_s": max(values) if values else math.nan,
        }


class Ingestor:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, bytes, float, Callable[[], None] | None]] = queue.SimpleQueue()
        self.stats = IngestStats()
        self._log_window = (0.0, 0)

    def offer(
        self, topic: str, payload: bytes, received: float | None = None, ack: Callable[[], None] | None = None
    ) -> None:
        """Called from the MQTT thread: cheap, never raises. ``ack``: to call once the message is stored."""
        self._queue.put((topic, payload, time.time() if received is None else received, ack))

    def backlog(self) -> int:
        return self._queue.qsize()

    def drain(self, timeout: float, max_items: int = 20_000) -> IngestBatch:
        """Everything queued now (waiting up to ``timeout`` for the first message), decoded."""
        batch = IngestBatch()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return batch
        count = 0
        while True:
            self._add(batch, *item)
            batch.raw.append(item)
            count += 1
            if count >= max_items:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch

    def single(self, item: tuple[str, bytes, float, Callable[[], None] | None]) -> IngestBatch:
        """One received item of a batch decoded again, on its own (counted once already, by ``drain``)."""
        received, rejected = self.stats.received, self.stats.rejected
        batch = IngestBatch()
        self._add(batch, *item)
        self.stats.received, self.stats.rejected = received, rejected
        return batch

    def _add(
        self, batch: IngestBatch, topic: str, payload: bytes, received: float, ack: Callable[[], None] | None
    ) -> None:
        self.stats.received += 1
        if ack is not None:
            batch.acks.append(ack)
        at = datetime.fromtimestamp(received, UTC)
        try:
            message = decode(topic, payload)
        except ProtocolError as exc:
            self._reject(batch, topic, f"{type(exc).__name__}", str(exc), at)
            return
        except Exception as exc:  # a decoder bug must not stop ingest either
            self._reject(batch, topic, f"internal {type(exc).__name__}", str(exc), at)
            return
        if isinstance(message, Telemetry):
            batch.telemetry.append((message, at))
        elif isinstance(message, Birth):
            batch.births.append((message, at))
        elif isinstance(message, State):
            batch.states.append((message, at))
        elif isinstance(message, Event):
            batch.events.append((message, at))
        else:
            self._reject(batch, topic, "UnexpectedChannel", f"{type(message).__name__} is not ingested", at)

    def _reject(self, batch: IngestBatch, topic: str, error: str, detail: str, at: datetime) -> None:
        self.stats.rejected += 1
        batch.reject(f"{_channel_of(topic)}:{error}", detail, topic, at)
        minute, logged = self._log_window
        now = time.monotonic()
        if now - minute > 60:
            minute, logged = now, 0
        if logged < REJECT_LOG_PER_MINUTE:
            log.warning("rejected message on %r: %s", topic[:200], detail[:500])
        self._log_window = (minute, logged + 1)

    def stored(self, batch: IngestBatch, stored_at: float) -> None:
        """Record what a committed batch did (lag = commit time − sent_at, telemetry only)."""
        self.stats.batches += 1
        self.stats.stored += len(batch) - len(batch.rejects)
        for message, _received in batch.telemetry:
            self.stats.lags.append((stored_at, stored_at - message.sent_at.timestamp()))
