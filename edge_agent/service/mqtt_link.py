"""The one place paho-mqtt is used by the agent (and the simulator): connect, Last Will, publish, subscribe.

MQTT v5, ``connect_async`` + paho's own network thread, which reconnects with exponential backoff
(1 s .. ``max_delay``) forever, also when the broker is down at start-up. On every (re)connect it publishes
what ``on_connect_messages`` returns (birth, ``online``) and subscribes again (the retained assignment then
arrives at once). QoS 1 messages published while disconnected are queued by paho (bounded) and sent on
reconnect; telemetry (QoS 0) is dropped while offline. With an ``Outbox``, events are also kept on disk until
the broker acknowledged them, and published again at the next start (``kill -9`` or power loss lose none).

Round trip: every QoS 1 message published on a live connection (birth, state, events) is timed from
``publish`` to its PUBACK: the broker's answer, so the time there and back plus the broker's own work. Messages
queued while offline, and those whose connection dropped before the PUBACK, are not timed. ``round_trip_s``
is the median of the recent ones (``None`` when the agent published nothing at QoS 1 lately).

Requests (queue control): a message on ``request_topic`` goes to ``on_request`` with its MQTT v5 Response Topic
and Correlation Data (None when absent); ``reply`` publishes the answer there, the Correlation Data echoed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.service.outbox import Outbox
from edge_agent.transfer.latency import RecentLatency
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.codec import encode
from fleet_protocol.messages import Message
from fleet_protocol.topics import AgentChannel, agent_topic

log = logging.getLogger(__name__)

#: channel -> (QoS, retain), as docs/design.md ("Wire protocol") sets them
DELIVERY: dict[AgentChannel, tuple[int, bool]] = {
    AgentChannel.BIRTH: (1, True),
    AgentChannel.STATE: (1, True),
    AgentChannel.TELEMETRY: (0, False),
    AgentChannel.EVENTS: (1, False),
}
MAX_QUEUED = 1000
#: PUBACKs that came before ``publish`` returned, kept until it does (a few at most; older ones are not ours)
MAX_EARLY_ACKS = 64

#: ``on_request(payload, response_topic, correlation_data)``, on paho's network thread
RequestHandler = Callable[[bytes, str | None, bytes | None], None]


class MqttLink:
    def __init__(
        self,
        url: MqttUrl,
        client_id: str,
        *,
        will: Message | None,
        on_connect_messages: Callable[[], Sequence[Message]],
        subscriptions: Sequence[str],
        on_message: Callable[[str, bytes], None],
        keepalive: int = 30,
        max_delay: int = 30,
        outbox: Outbox | None = None,
        request_topic: str | None = None,
        on_request: RequestHandler | None = None,
    ) -> None:
        self.url = url
        self._request_topic = request_topic
        self._on_request = on_request
        self._on_connect_messages = on_connect_messages
        self._subscriptions = tuple(subscriptions)
        self._deliver = on_message
        self.connected = threading.Event()
        self.connects = 0
        self._keepalive = keepalive
        self._outbox = outbox
        self._unacked: list[tuple[int, mqtt.MQTTMessageInfo]] = []  # (outbox row, paho's handle)
        self._unacked_lock = threading.Lock()
        self.round_trip = RecentLatency()
        self._timed: dict[int, tuple[float, int]] = {}  # mid -> (when published, connection number)
        self._early_acks: OrderedDict[int, float] = OrderedDict()  # mid -> when its PUBACK came
        self._timing_lock = threading.Lock()
        client = paho_client(url, client_id)
        if will is not None:
            qos, retain = DELIVERY[will.channel]
            client.will_set(agent_topic(will.agent_id, will.channel), encode(will), qos=qos, retain=retain)
        client.reconnect_delay_set(min_delay=1, max_delay=max_delay)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def set_subscriptions(self, topics: Sequence[str]) -> None:
        """Before ``start``: the topics to (re)subscribe to on every connect."""
        self._subscriptions = tuple(topics)

    def start(self) -> None:
        log.info("connecting to %s", self.url.redacted())
        self._resend_outbox()
        self.client.connect_async(self.url.host, self.url.port, keepalive=self._keepalive)
        self.client.loop_start()

    def stop(self, final: Message | None = None, timeout: float = 5.0) -> None:
        """Publish ``final`` (e.g. the retained ``offline`` state) if connected, then disconnect cleanly."""
        if final is not None and self.connected.is_set():
            info = self._send(final)
            if info is not None:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.debug("final message not confirmed: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
        if self._outbox is not None:
            self._sweep()
            self._outbox.close()

    def publish(self, message: Message) -> None:
        self._send(message)

    def reply(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        """Answer a request: QoS 1, not retained, the request's Correlation Data echoed (dropped while offline:
        the requester has given up by the time the link is back)."""
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if correlation is not None:
            properties.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=1, retain=False, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("could not send a reply to %s (%s)", topic, mqtt.error_string(info.rc))

    def round_trip_s(self) -> float | None:
        """The median PUBLISH-to-PUBACK time of the recent QoS 1 messages (``None``: none lately)."""
        return self.round_trip.median()

    def _send(self, message: Message, *, live: bool | None = None) -> mqtt.MQTTMessageInfo | None:
        qos, retain = DELIVERY[message.channel]
        topic, payload = agent_topic(message.agent_id, message.channel), encode(message)
        row = self._store(topic, payload) if message.channel == AgentChannel.EVENTS else None
        live = self.connected.is_set() if live is None else live
        connection, started = self.connects, time.monotonic()
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            kept = " (kept in the outbox for the next start)" if row is not None else ""
            log.warning("MQTT queue full: dropped a %s message%s", message.channel.value, kept)
            return None
        if qos == 1 and live and info.rc == mqtt.MQTT_ERR_SUCCESS:
            self._time(info.mid, started, connection)
        self._track(row, info)
        return info

    # -- round trip: publish to PUBACK -----------------------------------------------------------------------
    def _time(self, mid: int, started: float, connection: int) -> None:
        with self._timing_lock:
            acked = self._early_acks.pop(mid, None)
            if acked is None:
                self._timed[mid] = (started, connection)
                return
        self.round_trip.add(acked - started)

    def _acked(self, mid: int) -> None:
        now = time.monotonic()
        with self._timing_lock:
            timed = self._timed.pop(mid, None)
            if timed is None:  # not timed, or publish has not returned yet
                self._early_acks[mid] = now
                while len(self._early_acks) > MAX_EARLY_ACKS:
                    self._early_acks.popitem(last=False)
                return
        started, connection = timed
        if connection == self.connects:
            self.round_trip.add(now - started)

    # -- outbox: events on disk until the broker acknowledged them ---------------------------------------------
    def _store(self, topic: str, payload: bytes) -> int | None:
        if self._outbox is None:
            return None
        try:
            return self._outbox.add(topic, payload)
        except sqlite3.Error as exc:
            log.error("cannot keep an event in the outbox (%s): it is queued in memory only", exc)
            return None

    def _track(self, row: int | None, info: mqtt.MQTTMessageInfo) -> None:
        if row is not None:
            with self._unacked_lock:
                self._unacked.append((row, info))
            self._sweep()  # the PUBACK may have come before we got here

    def _resend_outbox(self) -> None:
        """Before connecting: publish again what a previous run could not get acknowledged (queued by paho)."""
        if self._outbox is None:
            return
        try:
            pending = self._outbox.pending()
        except sqlite3.Error as exc:
            log.error("cannot read the outbox: %s", exc)
            return
        if pending:
            log.info("publishing %d event(s) a previous run could not get acknowledged", len(pending))
        for row, topic, payload in pending:
            info = self.client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                self._track(row, info)

    def _sweep(self, acked_mid: int | None = None) -> None:
        """Forget (on disk) the events the broker acknowledged (``acked_mid``: the one acknowledged just now;
        paho marks its handle published only after ``on_publish`` returns)."""
        with self._unacked_lock:
            done = [row for row, info in self._unacked if info.mid == acked_mid or _acknowledged(info)]
            self._unacked = [(row, info) for row, info in self._unacked if row not in done]
        if done and self._outbox is not None:
            try:
                self._outbox.remove(done)
            except sqlite3.Error as exc:  # they go out once more at the next start (the controller dedups)
                log.warning("cannot update the outbox: %s", exc)

    # -- paho callbacks (its network thread) -------------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Properties | None
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self.connects += 1
        log.info("connected to %s (connect #%d)", self.url.redacted(), self.connects)
        for message in self._on_connect_messages():
            self._send(message, live=True)
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Properties | None
    ) -> None:
        self.connected.clear()
        with self._timing_lock:  # their PUBACKs, if any, come on another connection: not a round trip
            self._timed.clear()
            self._early_acks.clear()
        if reason.value != 0:
            log.warning("disconnected from the broker (%s); reconnecting with backoff", reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._acked(mid)
        if self._outbox is not None:
            self._sweep(mid)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._on_request is not None and message.topic == self._request_topic:
            props = message.properties
            response_topic = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
            self._on_request(
                bytes(message.payload), response_topic, None if correlation is None else bytes(correlation)
            )
            return
        self._deliver(message.topic, bytes(message.payload))


def _acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    """paho's ``is_published()`` raises for a message published while disconnected (its ``rc`` stays NO_CONN)
    although paho queued it and sent it on reconnect; the flag the PUBACK sets is the truth."""
    with info._condition:
        return bool(info._published)
