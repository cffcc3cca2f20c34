"""Recording events: when a recording is stored and verified (its catalog row is 'cataloged': the object was read
and its size and sha256 checked), an event goes to every configured webhook, signed, and optionally to an MQTT
topic, for an analysis pipeline to consume. Payload and signature: docs/recordings-events.md.

    RecordingEvents.run_once(now)
     ├── enqueue   cataloged recordings (within ``lookback_h``) without a row for a receiver → one
     │             ``recording_delivery`` row each (unique per recording × receiver: two controllers create it once)
     └── deliver   due rows, each claimed first (two controllers never send the same row at once), through
                   ``controller.webhooks.Deliveries`` (retries with backoff, given up after a while);
                   a webhook gets the JSON body with ``X-Edgefleet-Timestamp`` and ``X-Edgefleet-Signature``,
                   the MQTT receiver gets the same body on ``TOPIC`` (QoS 1, not retained)

Delivery is at least once: receivers de-duplicate on the event id (``X-Edgefleet-Event-Id``, the body's ``id``),
which is the same for the same object content whoever sends it and however often.

Pure parts (``event_id``, ``payload``, ``body``, ``sign``, ``verify``) are apart from the store and the thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, select, update
from sqlmodel import Session

from controller.alerting.state import RetryPolicy
from controller.config import EventWebhookSection, RecordingsEventsSection
from controller.store.database import as_utc, to_db_time, upsert
from controller.store.models import Recording, RecordingDelivery
from controller.store.tables import column, table_of
from controller.webhooks import Deliveries, Due, post

log = logging.getLogger(__name__)

EVENT_TYPE = "recording.stored"
SCHEMA_VERSION = 1
#: where the events are published when ``[recordings_events] mqtt`` is on (QoS 1, not retained)
TOPIC = "edgefleet/v1/recordings/stored"
MQTT_TARGET = f"mqtt:{TOPIC}"
SIGNATURE_HEADER = "X-Edgefleet-Signature"
TIMESTAMP_HEADER = "X-Edgefleet-Timestamp"
EVENT_ID_HEADER = "X-Edgefleet-Event-Id"
EVENT_TYPE_HEADER = "X-Edgefleet-Event"
#: a receiver rejects a request whose timestamp is further than this from its clock (a replay)
TOLERANCE_S = 300
_NAMESPACE = uuid.UUID("8f4d1f3c-6d0e-5b7a-9c55-1e0f2a3b4c5d")
ENQUEUE_LIMIT = 500
#: a claimed row is not tried by another controller for this long (longer than a webhook's longest timeout)
CLAIM_S = 300.0

# --- pure ---------------------------------------------------------------------------------------


def event_id(key: str, sha256: str) -> str:
    """The event's id: the same for the same object key and content, whichever controller sends it, however
    often (receivers de-duplicate on it)."""
    return str(uuid.uuid5(_NAMESPACE, f"{EVENT_TYPE}\n{key}\n{sha256}"))


def _iso(value: datetime | None) -> str | None:
    at = as_utc(value)
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def payload(recording: Recording, bucket: str = "") -> dict[str, Any]:
    """The event for a cataloged recording (docs/recordings-events.md)."""
    r = recording
    return {
        "type": EVENT_TYPE,
        "version": SCHEMA_VERSION,
        "id": event_id(r.key, r.sha256),
        "occurred_at": _iso(r.cataloged_at),
        "recording": {
            "id": r.id,
            "bucket": bucket,
            "key": r.key,
            "agent_id": r.agent_id,
            "site": r.site,
            "file": r.file,
            "uploaded_at": _iso(r.uploaded_at),
            "recorded_at": _iso(r.recorded_at),
            "recorded_at_source": r.recorded_at_source,
            "clock_suspect": r.clock_suspect,
            "duration_s": r.duration_s,
            "sample_rate": r.sample_rate,
            "channels": r.channels,
            "bits_per_sample": r.bits_per_sample,
            "original_bytes": r.original_bytes,
            "stored_bytes": r.stored_bytes,
            "sha256": r.sha256,
            "codec": r.codec,
            "recorder_metadata": dict(r.recorder_metadata),
        },
    }


def body(event: Mapping[str, Any]) -> bytes:
    """The bytes sent (compact, keys sorted: the same event is the same bytes on every attempt)."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, sent: bytes) -> str:
    """``X-Edgefleet-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's secret, of the
    timestamp header's value, a dot, and the body (so a captured request cannot be replayed with a new time)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + sent, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, signature: str, sent: bytes, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within ``tolerance_s`` of ``now``."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), sent), signature)


def headers(secret: str, event: Mapping[str, Any], sent: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        EVENT_TYPE_HEADER: str(event.get("type", EVENT_TYPE)),
        EVENT_ID_HEADER: str(event.get("id", "")),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, sent),
    }


# --- the store ----------------------------------------------------------------------------------

_DELIVERY = table_of(RecordingDelivery)


def enqueue(session: Session, targets: Sequence[str], now: datetime, lookback: timedelta, bucket: str = "") -> int:
    """One delivery row per cataloged recording (cataloged within ``lookback``) and target that has none yet
    (commits); a row another controller created first is left as it is. Returns the rows added."""
    added = 0
    for target in targets:
        has_row = exists().where(
            and_(
                column(RecordingDelivery.recording_id) == column(Recording.id),
                column(RecordingDelivery.target) == target,
            )
        )
        query = (
            select(Recording)
            .where(column(Recording.status) == "cataloged")
            .where(column(Recording.cataloged_at) >= to_db_time(now - lookback))
            .where(~has_row)
            .order_by(column(Recording.cataloged_at), column(Recording.id))
            .limit(ENQUEUE_LIMIT)
        )
        rows = [_row(r, target, now, bucket) for r in session.scalars(query)]
        if rows:
            insert = upsert(session, _DELIVERY).values(rows)
            result = session.execute(insert.on_conflict_do_nothing(index_elements=["recording_id", "target"]))
            added += max(0, getattr(result, "rowcount", 0) or 0)
    session.commit()
    return added


def _row(recording: Recording, target: str, now: datetime, bucket: str) -> dict[str, Any]:
    event = payload(recording, bucket)
    at = to_db_time(now)
    return {
        "recording_id": recording.id,
        "target": target,
        "event_id": event["id"],
        "payload": event,
        "created_at": at,
        "next_attempt_at": at,
        "attempts": 0,
        "given_up": False,
        "last_error": "",
    }


def due(session: Session, targets: Sequence[str], now: datetime, limit: int = 100) -> list[RecordingDelivery]:
    """Rows of ``targets`` waiting and due now, oldest first."""
    query = (
        select(RecordingDelivery)
        .where(column(RecordingDelivery.delivered_at).is_(None), column(RecordingDelivery.given_up).is_(False))
        .where(column(RecordingDelivery.next_attempt_at) <= to_db_time(now))
        .where(column(RecordingDelivery.target).in_(list(targets)))
        .order_by(column(RecordingDelivery.id))
        .limit(limit)
    )
    return list(session.scalars(query).all())


def claim(
    session: Session, rows: Sequence[RecordingDelivery], now: datetime, lease: timedelta
) -> list[RecordingDelivery]:
    """The rows this controller may send now: each moved ``lease`` into the future unless another controller
    moved it first (so two controllers do not both send it; one that stops mid-send leaves the row to be tried
    again after the lease). Commits."""
    mine = []
    for row in rows:
        seen = column(RecordingDelivery.next_attempt_at) == to_db_time(row.next_attempt_at)
        claimed = (
            update(_DELIVERY)
            .where(column(RecordingDelivery.id) == row.id, seen, column(RecordingDelivery.delivered_at).is_(None))
            .values(next_attempt_at=to_db_time(now + lease))
        )
        if getattr(session.execute(claimed), "rowcount", 0) == 1:
            mine.append(row)
    session.commit()
    return mine


def record_attempt(session: Session, delivery_id: int, values: Mapping[str, Any]) -> None:
    session.execute(update(_DELIVERY).where(column(RecordingDelivery.id) == delivery_id).values(**values))
    session.commit()


# --- the thread's work ----------------------------------------------------------------------------


class RecordingEvents:
    """Enqueue and deliver recording events (``run_once``, from the controller's ``recordings_events`` thread).

    ``publish(body)`` publishes on ``TOPIC`` and returns once the broker has it (raises if not): given only
    when ``[recordings_events] mqtt`` is on. ``clock``: the seconds of the signature's timestamp."""

    def __init__(
        self,
        engine: Engine,
        config: RecordingsEventsSection,
        *,
        bucket: str = "",
        publish: Callable[[bytes], None] | None = None,
        post: Callable[[str, bytes, Mapping[str, str], float], None] = post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.config = config
        self.bucket = bucket
        self.webhooks: dict[str, EventWebhookSection] = {w.url: w for w in config.webhooks}
        self.publish = publish if config.mqtt else None
        self.targets = [*self.webhooks, *([MQTT_TARGET] if self.publish is not None else [])]
        self.post = post
        self.clock = clock
        retry = RetryPolicy(config.retry_first_s, config.retry_max_s, config.give_up_after_h * 3600)
        self.deliveries = Deliveries("recording event", retry, self._record)
        self.enqueued = 0
        self.rounds = 0

    def run_once(self, now: Callable[[], datetime]) -> int:
        """Enqueue what is new, then try every due delivery once; returns how many were delivered."""
        with Session(self.engine) as session:
            self.enqueued += enqueue(session, self.targets, now(), timedelta(hours=self.config.lookback_h), self.bucket)
            pending = due(session, self.targets, now())
            session.expunge_all()
            pending = claim(session, pending, now(), timedelta(seconds=CLAIM_S))
        delivered = sum(self._attempt(item, now) for item in pending)
        self.rounds += 1
        return delivered

    def _attempt(self, item: RecordingDelivery, now: Callable[[], datetime]) -> int:
        assert item.id is not None
        due_item = Due(item.id, item.target, item.attempts, item.created_at)
        return int(self.deliveries.attempt(due_item, self._sender(item), now))

    def _sender(self, item: RecordingDelivery) -> Callable[[], None] | None:
        sent = body(item.payload)
        if item.target == MQTT_TARGET:
            publish = self.publish
            return None if publish is None else (lambda: publish(sent))
        webhook = self.webhooks.get(item.target)
        if webhook is None:
            return None
        return lambda: self.post(
            webhook.url, sent, headers(webhook.secret, item.payload, sent, self.clock()), webhook.timeout_s
        )

    def _record(self, delivery_id: int, values: Mapping[str, object]) -> None:
        with Session(self.engine) as session:
            record_attempt(session, delivery_id, values)
