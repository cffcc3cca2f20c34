"""The controller's MQTT connection (paho-mqtt 2.x, MQTT v5): subscriptions, Last Will, publishing.

- Last Will: retained ``offline`` on ``edgefleet/v1/controller/state``; retained ``online`` on connect.
- Subscribes to birth/state/telemetry/events of every agent (QoS 1), as MQTT v5 shared subscriptions
  ``$share/<group>/...`` when a group is set, so several controllers split the messages.
- Publishes assignments retained with QoS 1. paho reconnects by itself; every (re)connect calls
  ``on_connected`` so the service can republish what the broker may have lost.
- A persistent MQTT v5 session: the client id is fixed (``edgefleet-controller-<controller_id>``), every
  connect (the first one too) has ``clean_start=False`` and a ``SessionExpiryInterval``, so the broker
  queues the QoS 1 messages (events, births, states) published while the controller is away (its restart,
  or the seconds after a broker restart) and delivers them when it is back. Mosquitto 2.0 only writes
  sessions that began with ``clean_start=False`` to its persistence file, so a clean start even on the
  first connect would lose the session at the next broker restart.
- Manual acknowledgement: a QoS 1 message is acknowledged (PUBACK) only once the service has stored it
  (``on_message`` gets an ``ack`` callable); a controller killed before that gets it again on its next
  connection (the store drops the duplicate).
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleet_protocol import (
    CONTROLLER_STATE_TOPIC,
    AgentChannel,
    AgentStatus,
    Assignment,
    ControllerState,
    agent_filter,
    agent_topic,
    encode,
)
from fleet_protocol.mqtt_url import MqttUrl

log = logging.getLogger(__name__)

#: confirms one received QoS 1 message to the broker (call it once the message is stored)
Ack = Callable[[], None]
INGESTED = (AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.TELEMETRY, AgentChannel.EVENTS)


class MqttLink:
    def __init__(
        self,
        url: MqttUrl,
        *,
        controller_id: str,
        on_message: Callable[[str, bytes, float, Ack | None], None],
        on_connected: Callable[[], None] = lambda: None,
        shared_group: str = "",
        session_expiry_s: int = 86_400,
    ) -> None:
        self.url = url
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
        self.client_id = f"edgefleet-controller-{controller_id}"  # fixed: the broker keeps our session by it
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(CONTROLLER_STATE_TOPIC, self._state(AgentStatus.OFFLINE), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_subscribe = self._subscribed
        self.client = client

    def _state(self, state: AgentStatus) -> bytes:
        return encode(ControllerState(controller_id=self.controller_id, seq=next(self._seq), state=state))

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(self.url.host, self.url.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 5.0, *, end_session: bool = False) -> None:
        """Publish ``offline`` (retained) and disconnect cleanly. The broker keeps the session (and queues for
        it) unless ``end_session``: for a controller retired for good (with a shared subscription the broker
        would otherwise keep routing a share of the messages to it until the session expires)."""
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

    def publish_assignment(self, assignment: Assignment) -> None:
        topic = agent_topic(assignment.agent_id, AgentChannel.ASSIGNMENT)
        self.client.publish(topic, encode(assignment), qos=1, retain=True)

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
        group = self.shared_group or None
        if flags.session_present:
            self.sessions_resumed += 1
            log.info("MQTT session resumed: the broker delivers what it queued while we were away")
        else:
            log.info("MQTT new session (no queued messages from before)")
        # Subscribing again is harmless with a resumed session (same filters, same options) and repairs a
        # session the broker lost; retained births/states are sent again only for a new subscription.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(agent_filter(ch, shared_group=group), options) for ch in INGESTED])
        client.publish(CONTROLLER_STATE_TOPIC, self._state(AgentStatus.ONLINE), qos=1, retain=True)
        log.info("MQTT connected to %s%s", self.url.redacted(), f" (shared group {group})" if group else "")
        self._on_connected()

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

        self._on_message(message.topic, bytes(message.payload), time.time(), ack)
