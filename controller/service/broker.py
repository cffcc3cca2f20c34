"""``BrokerConnection``: the controller's connection(s) to the MQTT broker (paho-mqtt 2.x, MQTT v5): subscriptions,
Last Will, publishing. (The agent's side is ``edge_agent.service.mqtt_link.MqttLink``.)

- Last Will: retained ``offline`` on ``edgefleet/v1/controller/state``; retained ``online`` on connect.
- Subscribes to birth/state/telemetry/events of every agent (QoS 1). With a shared group, telemetry (the
  volume, QoS 0) comes over a second, clean connection as ``$share/<group>/...`` so several controllers split
  it; births, states and events (QoS 1, few) stay on the persistent connection, NOT shared: every controller
  gets every one and the store keeps one copy. Measured on Mosquitto 2.0.11: a shared subscription is not
  restored after a broker restart (what is published before the controller subscribes again is lost), and a
  group member that is away with a persistent session keeps getting its round-robin share (QoS 1 queued, QoS 0
  dropped), so a shared subscription must not live in a persistent session.
- One broker user per connection: the broker ties each client id to its user name
  (``use_username_as_clientid``), so the second connection logs in with its own user (``telemetry_url``), the
  client ids are the user names, and no other user can take the controller's client id (and its session).
- Publishes assignments retained with QoS 1. paho reconnects by itself; every (re)connect calls
  ``on_connected`` so the service can republish what the broker may have lost.
- A persistent MQTT v5 session: the client id is fixed (the user name; without one in the URL
  ``edgefleet-controller-<controller_id>``), every connect (the first one too) has ``clean_start=False`` and a
  ``SessionExpiryInterval``, so the broker queues the QoS 1 messages (events, births, states) published while
  the controller is away (its restart, or the seconds after a broker restart) and delivers them when it is
  back. Mosquitto 2.0 only writes sessions that began with ``clean_start=False`` to its persistence file, so a
  clean start even on the first connect would lose the session at the next broker restart.
- Manual acknowledgement: a QoS 1 message is acknowledged (PUBACK) only once the service has stored it
  (``on_message`` gets an ``ack`` callable); a controller killed before that gets it again on its next
  connection (the store drops the duplicate).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.codec import encode
from fleet_protocol.messages import Assignment, ControllerState
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_filter, agent_topic
from fleet_protocol.vocabulary import AgentStatus

log = logging.getLogger(__name__)

#: confirms one received QoS 1 message to the broker (call it once the message is stored)
Ack = Callable[[], None]
#: QoS 1 channels: on the persistent session, never shared
KEPT = (AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.EVENTS)
INGESTED = (*KEPT, AgentChannel.TELEMETRY)


class BrokerConnection:
    def __init__(
        self,
        url: MqttUrl,
        *,
        controller_id: str,
        on_message: Callable[[str, bytes, float, Ack | None], None],
        on_connected: Callable[[], None] = lambda: None,
        shared_group: str = "",
        telemetry_url: MqttUrl | None = None,
        session_expiry_s: int = 86_400,
    ) -> None:
        if shared_group and telemetry_url is None:
            raise ValueError("a shared group needs telemetry_url: the telemetry connection's own broker user")
        self.url = url
        self.telemetry_url = telemetry_url
        self.controller_id = controller_id
        self.shared_group = shared_group
        self._on_message = on_message
        self._on_connected = on_connected
        self._seq = itertools.count()
        self.connected = threading.Event()
        self.session_expiry_s = session_expiry_s
        self.sessions = 0  # how many times connected and subscribed
        self.sessions_resumed = 0  # connects where the broker still had our session (and its queue)
        self._generation = 0  # one per connection: an ack is only sent on the connection that delivered
        # fixed: the broker keeps our session by it; the user name, as the broker ties the two together
        self.client_id = url.username or f"edgefleet-controller-{controller_id}"
        self.client = self._session_client(url)
        self._telemetry_ready = threading.Event()
        self.telemetry_client_id = ""
        self.telemetry_client: mqtt.Client | None = None  # the shared, clean connection (shared group only)
        if shared_group and telemetry_url is not None:
            self.telemetry_client_id = telemetry_url.username or f"{self.client_id}-telemetry"
            self.telemetry_client = self._telemetry_client(telemetry_url)

    def _session_client(self, url: MqttUrl) -> mqtt.Client:
        """The persistent-session connection: births, states, events (QoS 1, acknowledged once stored)."""
        client = paho_client(url, self.client_id, manual_ack=True)
        client.suppress_exceptions = True  # a failing callback is logged; it must not end paho's network thread
        client.will_set(CONTROLLER_STATE_TOPIC, self._state(AgentStatus.OFFLINE), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_subscribe = self._subscribed
        return client

    def _telemetry_client(self, url: MqttUrl) -> mqtt.Client:
        """The clean connection of the shared telemetry subscription."""
        shared = paho_client(url, self.telemetry_client_id, manual_ack=False)
        shared.suppress_exceptions = True
        shared.reconnect_delay_set(min_delay=1, max_delay=10)
        shared.on_connect = self._telemetry_connected
        shared.on_subscribe = lambda *_a: self._telemetry_ready.set()
        shared.on_disconnect = lambda *_a: self._telemetry_ready.clear()
        shared.on_message = lambda _c, _u, m: self._on_message(_topic(m), bytes(m.payload), time.time(), None)
        return shared

    def _state(self, state: AgentStatus) -> bytes:
        return encode(ControllerState(controller_id=self.controller_id, seq=next(self._seq), state=state))

    def start(self) -> None:
        self._connect_session()
        if self.telemetry_client is not None and self.telemetry_url is not None:
            self.telemetry_client.connect_async(
                self.telemetry_url.host, self.telemetry_url.port, keepalive=30, clean_start=True
            )
            self.telemetry_client.loop_start()

    def _connect_session(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(self.url.host, self.url.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def redeliver(self) -> None:
        """Connect the persistent session again: the broker sends what this controller left unacknowledged (an
        outage of its database) again only on a new connection of the session (MQTT 5, 4.4). A clean disconnect:
        no Last Will, the session and its queue stay."""
        log.info("MQTT session reconnects: the broker sends the unacknowledged messages again")
        self.client.disconnect()
        self.client.loop_stop()
        self._connect_session()

    @property
    def is_connected(self) -> bool:
        """Connected and subscribed (both connections, with a shared group)."""
        return self.connected.is_set() and (self.telemetry_client is None or self._telemetry_ready.is_set())

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.connected.wait(timeout):
            return False
        return self.telemetry_client is None or self._telemetry_ready.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 5.0, *, end_session: bool = False) -> None:
        """Publish ``offline`` (retained) and disconnect cleanly. The broker keeps the session (and queues for
        it) unless ``end_session``: for a controller retired for good (else the broker keeps a queue of
        births, states and events for it until the session expires)."""
        if self.connected.is_set():
            info = self.client.publish(CONTROLLER_STATE_TOPIC, self._state(AgentStatus.OFFLINE), qos=1, retain=True)
            deadline = time.monotonic() + timeout
            while not info.is_published() and time.monotonic() < deadline and self.connected.is_set():
                time.sleep(0.02)
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        if self.telemetry_client is not None:
            self.telemetry_client.disconnect()
            self.telemetry_client.loop_stop()

    def publish_assignment(self, assignment: Assignment) -> None:
        topic = agent_topic(assignment.agent_id, AgentChannel.ASSIGNMENT)
        self.client.publish(topic, encode(assignment), qos=1, retain=True)

    def publish_event(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
        """Publish ``payload`` (QoS 1, not retained) and return once the broker acknowledged it; raises if it
        did not within ``timeout_s`` (not connected, or no PUBACK): the caller's outbox tries again."""
        if not self.connected.is_set():
            raise ConnectionError("not connected to the broker")
        info = self.client.publish(topic, payload, qos=1, retain=False)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK for {topic} within {timeout_s} s")

    # -- paho callbacks (network thread) -----------------------------------------------------------
    def _connected(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connect to %s refused: %s", self.url.redacted(), reason)
            return
        self._generation += 1
        if flags.session_present:
            self.sessions_resumed += 1
            log.info("MQTT session resumed: the broker delivers what it queued while we were away")
        else:
            log.info("MQTT new session (no queued messages from before)")
        # Subscribing again is harmless with a resumed session (same filters, same options) and repairs a
        # session the broker lost; retained births/states are sent again only for a new subscription.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        channels = KEPT if self.telemetry_client is not None else INGESTED
        client.subscribe([(agent_filter(ch), options) for ch in channels])
        client.publish(CONTROLLER_STATE_TOPIC, self._state(AgentStatus.ONLINE), qos=1, retain=True)
        log.info("MQTT connected to %s", self.url.redacted())
        self._on_connected()

    def _telemetry_connected(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            where = self.telemetry_url.redacted() if self.telemetry_url else "?"
            log.error("MQTT telemetry connection to %s refused: %s", where, reason)
            return
        client.subscribe(agent_filter(AgentChannel.TELEMETRY, shared_group=self.shared_group), qos=1)
        log.info("MQTT telemetry connected (shared group %s)", self.shared_group)

    def _subscribed(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("MQTT subscriptions refused: %s", ", ".join(failed))
        self.sessions += 1
        self.connected.set()  # connected *and* subscribed: nothing published from now on is missed

    def _disconnected(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected: %s", reason)

    def _message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        ack: Ack | None = None
        if message.qos > 0:
            mid, qos, generation = message.mid, message.qos, self._generation

            def ack() -> None:
                # After a reconnect the broker sends the unacknowledged message again (same packet id); an
                # ack for the old connection is not sent, the new copy gets its own.
                if generation == self._generation:
                    client.ack(mid, qos)

        self._on_message(_topic(message), bytes(message.payload), time.time(), ack)


def _topic(message: mqtt.MQTTMessage) -> str:
    """The topic, or a stand-in the ingestor rejects (and acknowledges) if it is not UTF-8."""
    try:
        return message.topic
    except UnicodeDecodeError:
        return "<topic is not UTF-8>"
