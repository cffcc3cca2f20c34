"""The real services the other tests stand on: broker ACLs, S3 put/get, PostgreSQL."""

from __future__ import annotations

import io
import socket
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.localservices.seaweed import GRPC_OFFSET
from fleet_base.mqtt_url import MqttUrl

pytestmark = pytest.mark.integration


def _client(broker: Mosquitto, user: str) -> mqtt.Client:
    url = MqttUrl.parse(broker.url_for(user))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(url.username, url.password)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(url.host, url.port)
    client.loop_start()
    assert connected.wait(5), "did not connect"
    return client


def test_publish_and_subscribe_through_the_real_broker(mqtt_broker: Mosquitto) -> None:
    mqtt_broker.add_user("pi-1")
    received: list[tuple[str, bytes]] = []
    got = threading.Event()
    controller = _client(mqtt_broker, "controller")

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append((msg.topic, bytes(msg.payload)))
        got.set()

    controller.on_message = on_message
    controller.subscribe("edgefleet/v1/agents/+/telemetry", qos=1)
    agent = _client(mqtt_broker, "pi-1")
    try:
        import time

        time.sleep(0.2)
        agent.publish("edgefleet/v1/agents/pi-1/telemetry", b'{"x": 1}', qos=1).wait_for_publish(5)
        assert got.wait(5)
        assert received == [("edgefleet/v1/agents/pi-1/telemetry", b'{"x": 1}')]
    finally:
        agent.disconnect()
        controller.disconnect()


def test_acl_denial_is_reported_as_puback_0x87(mqtt_broker: Mosquitto) -> None:
    """An agent may not write another agent's topic: MQTT v5 QoS 1 reports 0x87 (Not authorized)."""
    mqtt_broker.add_user("pi-2")
    codes: dict[int, int] = {}
    done = threading.Event()
    agent = _client(mqtt_broker, "pi-2")

    def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties) -> None:
        codes[mid] = rc.value
        if len(codes) == 2:
            done.set()

    agent.on_publish = on_publish
    try:
        own = agent.publish("edgefleet/v1/agents/pi-2/telemetry", b"{}", qos=1)
        other = agent.publish("edgefleet/v1/agents/pi-3/telemetry", b"{}", qos=1)
        assert done.wait(5)
        assert codes[own.mid] in (0x00, 0x10)  # success, or "no matching subscribers"
        assert codes[other.mid] == 0x87
    finally:
        agent.disconnect()


def test_wrong_password_is_refused(mqtt_broker: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("controller", "wrong")
    result: list[int] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        result.append(rc.value)
        done.set()

    client.on_connect = on_connect
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.loop_start()
    try:
        assert done.wait(5)
        assert result[0] in (0x86, 0x87)  # bad user name or password / not authorized
    finally:
        client.loop_stop()


def test_put_and_get_an_object_through_the_real_s3_server(s3_server: SeaweedS3) -> None:
    client = s3_server.client()
    payload = bytes(range(256)) * 4096
    client.put_object(s3_server.bucket, "probe/object.bin", io.BytesIO(payload), len(payload))
    response = client.get_object(s3_server.bucket, "probe/object.bin")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()
    client.remove_object(s3_server.bucket, "probe/object.bin")


def test_store_round_trip_on_sqlite_and_postgresql(database_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO probe (id, name) VALUES (1, 'pi-1')"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM probe WHERE id = 1")).scalar_one() == "pi-1"
        assert conn.dialect.name in ("sqlite", "postgresql")
    engine.dispose()


def _external_address() -> str:
    """An IPv4 address of this machine that is not loopback (the tests below need one)."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    pytest.skip("this machine has no non-loopback IPv4 address")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def test_the_services_listen_on_loopback_only(mqtt_broker: Mosquitto, s3_server: SeaweedS3) -> None:
    """SeaweedFS's filer, master and volume ports serve data without credentials: every port of ``weed mini``
    (HTTP and gRPC) and the broker answer on 127.0.0.1 and not on this machine's network address."""
    address = _external_address()
    with socket.create_server(("0.0.0.0", 0)) as control:  # the control: a wildcard listener IS reachable there
        assert _answers(address, control.getsockname()[1])
    ports = {f"weed {name}": port for name, port in s3_server.ports.items()}
    ports |= {f"weed {name} gRPC": port + GRPC_OFFSET for name, port in s3_server.ports.items()}
    ports["mosquitto"] = mqtt_broker.port
    assert {name: _answers("127.0.0.1", port) for name, port in ports.items()} == dict.fromkeys(ports, True)
    assert {name: _answers(address, port) for name, port in ports.items()} == dict.fromkeys(ports, False)
