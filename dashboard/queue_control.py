"""Queue control from the dashboard (docs/queue-control.md): ask an agent for its upload queue and act on it.

The dashboard's only MQTT connection, with its own broker user (``[mqtt] url``; role ``dashboard`` in the broker
ACL: it may write queue requests to any agent and read only the replies to itself). Each request is published
with the MQTT v5 Response Topic ``edgefleet/v1/replies/<our user>/<agent>/queue`` and a random Correlation
Data; the reply that comes back there with the same Correlation Data, from that agent, is the answer. No answer
within ``reply_timeout_s``: :class:`QueueControlError` "the agent did not answer" (offline, or too old to know
queue control).

Every change (retry, prioritize, hold, release) is written to the audit trail (``AuditEntry``: who, what, when,
the file and the agent's answer); a list is not. Viewers may list; only operators may change (the routes).
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from controller.store.models import AuditEntry
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.codec import decode_queue_reply, encode
from fleet_protocol.errors import ProtocolError
from fleet_protocol.messages import QueueReply, QueueRequest
from fleet_protocol.topics import (
    parse_queue_reply_topic,
    queue_reply_filter,
    queue_reply_topic,
    queue_request_topic,
)
from fleet_protocol.vocabulary import QueueAction

log = logging.getLogger(__name__)

NOT_CONFIGURED = "queue control is not configured (no [mqtt] section in the dashboard configuration)"
NO_ANSWER = "the agent did not answer (offline, or its software has no queue control)"
#: requests waiting for their reply at once; more are refused (every one holds a web worker thread)
MAX_PENDING = 64


class QueueControlError(RuntimeError):
    """No answer (message is shown to the operator)."""


@dataclass
class _Pending:
    agent_id: str
    done: threading.Event = field(default_factory=threading.Event)
    reply: QueueReply | None = None


@dataclass
class ClientCounters:
    replies: int = 0
    unmatched: int = 0  # a reply nobody waits for (late, or not ours)
    invalid: int = 0  # not a valid reply from the agent its topic names


class QueueClient:
    """One MQTT v5 connection (paho's network thread) shared by every web request."""

    def __init__(self, url: MqttUrl, timeout_s: float) -> None:
        if not url.username:
            raise ValueError("the [mqtt] url needs the dashboard's broker user")
        self.url = url
        self.requester = url.username
        self.timeout_s = timeout_s
        self.counters = ClientCounters()
        self._pending: dict[bytes, _Pending] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = paho_client(url, url.username)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._started = False

    def start(self) -> None:
        """Connect (in the background, reconnecting forever); done by the first ``ask`` if not before."""
        with self._lock:
            if self._started:
                return
            self._started = True
        log.info("queue control: connecting to %s", self.url.redacted())
        self._client.connect_async(self.url.host, self.url.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
        self._client.disconnect()
        self._client.loop_stop()

    def ask(self, agent_id: str, action: QueueAction, file: str = "", who: str = "") -> QueueReply:
        """Send one request and wait for its reply; ``QueueControlError`` when there is none in time."""
        request = QueueRequest(request_id=secrets.token_hex(8), action=action, file=file, requested_by=who[:128])
        self.start()
        if not self._subscribed.wait(self.timeout_s):
            raise QueueControlError("the dashboard is not connected to the broker")
        correlation = secrets.token_bytes(16)
        pending = _Pending(agent_id)
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                raise QueueControlError("too many queue requests at once; try again")
            self._pending[correlation] = pending
        try:
            self._publish(agent_id, request, correlation)
            if not pending.done.wait(self.timeout_s) or pending.reply is None:
                raise QueueControlError(NO_ANSWER)
            return pending.reply
        finally:
            with self._lock:
                self._pending.pop(correlation, None)

    def _publish(self, agent_id: str, request: QueueRequest, correlation: bytes) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = queue_reply_topic(self.requester, agent_id)
        properties.CorrelationData = correlation
        info = self._client.publish(queue_request_topic(agent_id), encode(request), qos=1, properties=properties)
        if info.rc != 0:
            raise QueueControlError("the dashboard is not connected to the broker")

    # -- paho callbacks (its network thread) -------------------------------------------------------------------
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("queue control: the broker refused the connection: %s", reason)
            return
        client.subscribe(queue_reply_filter(self.requester), qos=1)

    def _on_subscribe(self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if all(not r.is_failure for r in reasons):
            self._subscribed.set()
        else:
            log.error("queue control: the broker refused the reply subscription (ACL?): %s", reasons)

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._subscribed.clear()
        if reason.value != 0:
            log.warning("queue control: disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        with self._lock:
            pending = self._pending.get(bytes(correlation)) if correlation is not None else None
        if pending is None:
            self.counters.unmatched += 1
            return
        try:
            requester, agent_id = parse_queue_reply_topic(message.topic)
            if requester != self.requester or agent_id != pending.agent_id:
                raise ProtocolError(f"reply on {message.topic!r} is not from {pending.agent_id!r}")
            pending.reply = decode_queue_reply(bytes(message.payload), agent_id)
        except ProtocolError as exc:
            self.counters.invalid += 1
            log.warning("queue control: invalid reply (%d so far): %s", self.counters.invalid, exc)
            return
        self.counters.replies += 1
        pending.done.set()


@dataclass(frozen=True)
class QueuePanel:
    """What the agent page's queue panel shows: the reply, or why there is none."""

    reply: QueueReply | None
    error: str = ""


def queue_panel(client: QueueClient | None, agent_id: str, who: str) -> QueuePanel:
    if client is None:
        return QueuePanel(None, NOT_CONFIGURED)
    try:
        return QueuePanel(client.ask(agent_id, QueueAction.LIST, who=who))
    except QueueControlError as exc:
        return QueuePanel(None, str(exc))


def act(
    client: QueueClient, session: Session, *, who: str, agent_id: str, action: QueueAction, file: str, at: datetime
) -> QueueReply:
    """Ask ``agent_id`` to apply ``action`` to ``file`` and write the outcome to the audit trail (also when the
    agent did not answer); ``QueueControlError`` then."""
    detail: dict[str, Any] = {"file": file}
    try:
        reply = client.ask(agent_id, action, file, who)
    except QueueControlError as exc:
        detail.update(result="no answer", error=str(exc))
        _audit(session, who, agent_id, action, detail, at)
        raise
    detail.update(result="done" if reply.ok else "refused", error=reply.error)
    _audit(session, who, agent_id, action, detail, at)
    return reply


def _audit(
    session: Session, who: str, agent_id: str, action: QueueAction, detail: dict[str, Any], at: datetime
) -> None:
    session.add(AuditEntry(at=at, who=who, action=f"queue.{action.value}", target=f"agent:{agent_id}", detail=detail))
    session.commit()
