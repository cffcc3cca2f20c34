"""The services the roles configured, started from the rendered files, with the credentials the roles generated:
every link over TLS with the private CA, each device with its own identity and nothing more."""

from __future__ import annotations

import array
import io
import queue
import socket
import ssl
import time
import wave
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fleet_protocol.codec import decode, decode_controller_state
from fleet_protocol.messages import Assignment, State
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus
from tests.integration.ansible.conftest import CentralServices, Fleet
from tests.integration.ansible.deployment import AGENTS, CENTRAL, Deployment
from tests.integration.ansible.mqtt_probe import Probe, url_with_password, url_without_tls

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
PACKET_TOO_LARGE = 0x95
MESSAGE_SIZE_LIMIT = 256 * 1024
EXAMPLE_ADMIN_PASSWORD = "example-admin-password"  # its bcrypt hash is in the example vault
# The fleet runs AGENTS[0]; the broker and S3 checks log in as AGENTS[1], whose agent never runs, so they cannot
# disturb the running one (client id = user name: a second login as the same user takes the session over).
RUNNING = AGENTS[0]
ME, OTHER = AGENTS[1], AGENTS[0]
BUCKET = "recordings"


def _agent(deployment: Deployment, agent: str) -> dict[str, Any]:
    return deployment.toml(agent, "/etc/edgefleet/agent.toml")


def _controller_mqtt(deployment: Deployment) -> dict[str, str]:
    return dict(deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["mqtt"])


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


def _connect(probes: list[Probe], url: str, client_id: str | None = None) -> Probe:
    probe = Probe(url, client_id=client_id)
    probes.append(probe)
    assert probe.connect() == 0, f"cannot connect as {probe.url.username}"
    return probe


def _nothing_arrives(probe: Probe, seconds: float = 1.0) -> None:
    with pytest.raises(queue.Empty):
        probe.messages.get(timeout=seconds)


# --- the broker: TLS only, client id = user name, per-device ACL, size limit ------------------------------------


def test_broker_speaks_only_tls_with_the_private_ca(deployment: Deployment, central_services: CentralServices) -> None:
    url = _agent(deployment, ME)["mqtt"]["url"]
    assert url.startswith("mqtts://")
    plain = Probe(url_without_tls(url), timeout=10)
    try:
        with pytest.raises((OSError, queue.Empty)):  # the TLS port closes a plaintext client: no CONNACK
            plain.connect()
    finally:
        plain.close()
    system_trust = ssl.create_default_context()  # without the private CA the broker's certificate is refused
    with (
        socket.create_connection(("127.0.0.1", deployment.ports["mqtt"]), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        system_trust.wrap_socket(raw, server_hostname="127.0.0.1")


def test_agent_writes_only_its_own_topics(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    payload = b'{"probe": true}'
    for channel in (AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.TELEMETRY, AgentChannel.EVENTS):
        assert me.publish(agent_topic(ME, channel), payload) < 0x80, channel  # 0 or 0x10 "no subscribers"
    assert me.publish(agent_topic(ME, AgentChannel.ASSIGNMENT), payload) == NOT_AUTHORIZED
    assert me.publish(agent_topic(OTHER, AgentChannel.STATE), payload) == NOT_AUTHORIZED
    assert me.publish("edgefleet/v1/controller/state", payload) == NOT_AUTHORIZED


def test_agent_reads_only_its_own_assignment(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    controller = _connect(probes, deployment.observer_url())
    for agent in AGENTS:
        assert controller.publish(agent_topic(agent, AgentChannel.ASSIGNMENT), agent.encode(), retain=True) < 0x80
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    me.subscribe(agent_topic(OTHER, AgentChannel.ASSIGNMENT))  # granted by Mosquitto, never delivered
    me.subscribe(agent_topic(ME, AgentChannel.ASSIGNMENT))
    first = me.messages.get(timeout=10)
    assert (first.topic, first.payload) == (agent_topic(ME, AgentChannel.ASSIGNMENT), ME.encode())
    _nothing_arrives(me)
    for agent in AGENTS:  # clear the retained probes so a real agent never sees them
        assert controller.publish(agent_topic(agent, AgentChannel.ASSIGNMENT), b"", retain=True) < 0x80


def test_no_agent_can_take_over_the_controllers_session(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    """Client ids are the user names: an agent claiming the controller's client id gets its own session. (Logs in as
    the controller itself: it runs before the fleet is started, in file order.)"""
    controller = _connect(probes, _controller_mqtt(deployment)["url"], client_id="edgefleet-controller-ctl-1")
    controller.subscribe(agent_topic(ME, AgentChannel.STATE))
    for stolen_id in ("edgefleet-controller-ctl-1", "controller", OTHER):
        impostor = Probe(_agent(deployment, ME)["mqtt"]["url"], client_id=stolen_id)
        try:
            assert impostor.connect() == 0
            assert impostor.publish(agent_topic(ME, AgentChannel.STATE), stolen_id.encode()) < 0x80
            got = controller.messages.get(timeout=10)  # the controller is still connected and served
            assert got.payload == stolen_id.encode()
        finally:
            impostor.close()
    assert not controller.disconnected.is_set()


def test_telemetry_user_only_reads_agent_telemetry(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    mqtt = _controller_mqtt(deployment)
    assert mqtt["telemetry_url"] != mqtt["url"]
    telemetry = _connect(probes, mqtt["telemetry_url"])
    assert telemetry.url.username == "controller-telemetry"
    telemetry.subscribe(f"$share/edgefleet/edgefleet/v1/agents/+/{AgentChannel.TELEMETRY.value}")
    telemetry.subscribe(f"$share/edgefleet/edgefleet/v1/agents/+/{AgentChannel.STATE.value}")
    telemetry.subscribe(f"edgefleet/v1/agents/+/{AgentChannel.EVENTS.value}")
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    for channel in (AgentChannel.STATE, AgentChannel.EVENTS, AgentChannel.TELEMETRY):
        assert me.publish(agent_topic(ME, channel), channel.value.encode()) < 0x80
    got = telemetry.messages.get(timeout=10)
    assert (got.topic, got.payload) == (agent_topic(ME, AgentChannel.TELEMETRY), b"telemetry")
    _nothing_arrives(telemetry)
    assert telemetry.publish(agent_topic(ME, AgentChannel.ASSIGNMENT), b"{}") == NOT_AUTHORIZED


def test_the_central_monitor_user_reads_only_sys(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    url = deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["central"]["mqtt_url"]
    monitor = _connect(probes, url)
    assert monitor.url.username == "central-monitor"
    monitor.subscribe("$SYS/broker/uptime")
    monitor.subscribe(f"edgefleet/v1/agents/+/{AgentChannel.TELEMETRY.value}")
    assert monitor.messages.get(timeout=30).topic == "$SYS/broker/uptime"  # the broker publishes $SYS every 10 s
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    assert me.publish(agent_topic(ME, AgentChannel.TELEMETRY), b"telemetry") < 0x80
    # the next $SYS round comes after the telemetry (one queue, in order): the telemetry never came
    assert monitor.messages.get(timeout=30).topic == "$SYS/broker/uptime"
    assert monitor.publish(agent_topic(ME, AgentChannel.ASSIGNMENT), b"{}") == NOT_AUTHORIZED


def test_oversized_messages_never_reach_the_controller(
    deployment: Deployment, central_services: CentralServices, probes: list[Probe]
) -> None:
    controller = _connect(probes, deployment.observer_url())
    controller.subscribe(agent_topic(ME, AgentChannel.TELEMETRY))
    me = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])
    assert me.publish(agent_topic(ME, AgentChannel.TELEMETRY), b"x" * MESSAGE_SIZE_LIMIT) < 0x80  # at the limit
    assert len(controller.messages.get(timeout=10).payload) == MESSAGE_SIZE_LIMIT
    outcome = me.publish_outcome(agent_topic(ME, AgentChannel.TELEMETRY), b"x" * (MESSAGE_SIZE_LIMIT + 1))
    assert outcome in (PACKET_TOO_LARGE, None)  # refused (paho may drop the connection on the refusal)
    _nothing_arrives(controller)


def test_wrong_password_is_refused(deployment: Deployment, central_services: CentralServices) -> None:
    probe = Probe(url_with_password(_agent(deployment, ME)["mqtt"]["url"], "not-the-password"))
    try:
        assert probe.connect() != 0
    finally:
        probe.close()


# --- S3: https through the proxy, one identity per device limited to what it needs -------------------------------


def _put(client: Any, key: str, data: bytes = b"hello") -> None:
    client.put_object(BUCKET, key, io.BytesIO(data), len(data))


def _denied(call: Callable[[], object]) -> None:
    from minio.error import S3Error

    with pytest.raises(S3Error) as error:
        call()
    assert error.value.code == "AccessDenied", error.value


def test_agent_s3_identity_is_limited_to_its_own_prefix(
    deployment: Deployment, central_services: CentralServices
) -> None:
    from minio.commonconfig import CopySource

    admin = deployment.s3_client("admin")
    me, other = (deployment.s3_client(f"agent-{a}") for a in (ME, OTHER))
    mine, theirs = f"field/{ME}/probe.txt", f"field/{OTHER}/probe.txt"
    _put(me, mine)
    _put(other, theirs, b"theirs")
    assert me.get_object(BUCKET, mine).read() == b"hello"
    assert me.stat_object(BUCKET, mine).size == 5
    # another agent's objects: no read, no overwrite, no delete, no listing
    _denied(lambda: me.get_object(BUCKET, theirs).read())
    _denied(lambda: me.stat_object(BUCKET, theirs))
    _denied(lambda: _put(me, theirs, b"overwritten"))
    _denied(lambda: me.remove_object(BUCKET, theirs))
    _denied(lambda: list(me.list_objects(BUCKET, prefix=f"field/{OTHER}/")))
    _denied(lambda: list(me.list_objects(BUCKET)))
    _denied(lambda: me.copy_object(BUCKET, f"field/{ME}/copy.txt", CopySource(BUCKET, theirs)))
    assert admin.get_object(BUCKET, theirs).read() == b"theirs"
    # not even its own objects may be deleted (retention is the operator's), and nothing outside the prefix
    _denied(lambda: me.remove_object(BUCKET, mine))
    _denied(lambda: _put(me, "elsewhere.txt"))
    _denied(lambda: _put(me, f"field/{ME}-suffix/probe.txt"))


def test_agent_lists_only_its_own_multipart_uploads(deployment: Deployment, central_services: CentralServices) -> None:
    me, other = (deployment.s3_client(f"agent-{a}") for a in (ME, OTHER))
    key = f"field/{ME}/pending.flac"
    upload_id = me._create_multipart_upload(BUCKET, key, {})
    try:
        pending = me._list_multipart_uploads(BUCKET, prefix=key)
        assert [u.upload_id for u in pending.uploads] == [upload_id]
        assert me._list_parts(BUCKET, key, upload_id).parts == []
        _denied(lambda: other._list_multipart_uploads(BUCKET, prefix=key))
        _denied(lambda: other._list_parts(BUCKET, key, upload_id))
        _denied(lambda: other._abort_multipart_upload(BUCKET, key, upload_id))
        _denied(lambda: me._list_multipart_uploads(BUCKET))
    finally:
        me._abort_multipart_upload(BUCKET, key, upload_id)


def test_controller_s3_identity_only_lists_and_aborts_uploads(
    deployment: Deployment, central_services: CentralServices
) -> None:
    s3 = deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["s3"]
    assert (s3["access_key"], s3["secret_key"]) == deployment.s3_identities()["controller"]
    assert s3["endpoint"].startswith("https://")
    controller, me = deployment.s3_client("controller"), deployment.s3_client(f"agent-{ME}")
    key = f"field/{ME}/stale.flac"
    upload_id = me._create_multipart_upload(BUCKET, key, {})
    assert upload_id in [u.upload_id for u in controller._list_multipart_uploads(BUCKET).uploads]
    controller._abort_multipart_upload(BUCKET, key, upload_id)
    _put(me, f"field/{ME}/kept.txt")
    _denied(lambda: controller.get_object(BUCKET, f"field/{ME}/kept.txt").read())
    _denied(lambda: controller.remove_object(BUCKET, f"field/{ME}/kept.txt"))
    _denied(lambda: _put(controller, f"field/{ME}/by-controller.txt"))


def test_the_central_probe_identity_only_touches_its_prefix(
    deployment: Deployment, central_services: CentralServices
) -> None:
    probe_table = deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["central"]["s3_probe"]
    assert (probe_table["access_key"], probe_table["secret_key"]) == deployment.s3_identities()["central-probe"]
    probe, me = deployment.s3_client("central-probe"), deployment.s3_client(f"agent-{ME}")
    _put(probe, "_probe/ctl-1")
    assert probe.get_object(BUCKET, "_probe/ctl-1").read() == b"hello"
    probe.remove_object(BUCKET, "_probe/ctl-1")
    _put(me, f"field/{ME}/kept-from-probe.txt")
    _denied(lambda: probe.get_object(BUCKET, f"field/{ME}/kept-from-probe.txt").read())
    _denied(lambda: probe.remove_object(BUCKET, f"field/{ME}/kept-from-probe.txt"))
    _denied(lambda: _put(probe, f"field/{ME}/by-probe.txt"))


def test_s3_refuses_plain_http_and_wrong_secrets(deployment: Deployment, central_services: CentralServices) -> None:
    from minio.error import InvalidResponseError, S3Error

    from fleet_base.s3settings import S3Settings

    access_key, _ = deployment.s3_identities()[f"agent-{ME}"]
    plain = S3Settings(f"http://127.0.0.1:{deployment.ports['s3']}", access_key, "x" * 20, BUCKET).client()
    with pytest.raises(InvalidResponseError, match="HTTPS server"):  # the S3 port speaks TLS only
        _put(plain, f"field/{ME}/plain.txt")
    endpoint = f"https://127.0.0.1:{deployment.ports['s3']}"
    wrong = S3Settings(endpoint, access_key, "wrong-secret-wrong", BUCKET, ca_file=str(deployment.ca_file)).client()
    with pytest.raises(S3Error):
        _put(wrong, f"field/{ME}/wrong.txt")


# --- the whole provisioned fleet over TLS ----------------------------------------------------------------------


def _wait_for(probe: Probe, accept: Callable[[str, bytes], bool], fleet: Fleet, what: str, timeout: float = 45) -> None:
    """Read ``probe``'s messages until ``accept(topic, payload)``; fail with the service logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet.check_alive(what)
        try:
            msg = probe.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        if msg.payload and accept(msg.topic, bytes(msg.payload)):
            return
    pytest.fail(f"{what}: nothing after {timeout} s\n" + fleet.all_logs())


def test_installed_controller_goes_online_and_agents_may_see_it(
    deployment: Deployment, fleet: Fleet, probes: list[Probe]
) -> None:
    agent_view = _connect(probes, _agent(deployment, ME)["mqtt"]["url"])  # any agent may read it
    agent_view.subscribe(CONTROLLER_STATE_TOPIC)

    def online(topic: str, payload: bytes) -> bool:
        return decode_controller_state(topic, payload).state == AgentStatus.ONLINE

    _wait_for(agent_view, online, fleet, "controller state online")


def test_installed_agent_goes_online(deployment: Deployment, fleet: Fleet, probes: list[Probe]) -> None:
    controller = _connect(probes, deployment.observer_url())
    controller.subscribe(agent_topic(RUNNING, AgentChannel.STATE))

    def online(topic: str, payload: bytes) -> bool:
        state = decode(topic, payload)
        return isinstance(state, State) and state.state == AgentStatus.ONLINE

    _wait_for(controller, online, fleet, f"{RUNNING} state online")


def test_installed_controller_assigns_the_installed_agent(
    deployment: Deployment, fleet: Fleet, probes: list[Probe]
) -> None:
    watcher = _connect(probes, deployment.observer_url())
    watcher.subscribe(agent_topic(RUNNING, AgentChannel.ASSIGNMENT))

    def assignment(topic: str, payload: bytes) -> bool:
        return isinstance(decode(topic, payload), Assignment)

    _wait_for(watcher, assignment, fleet, f"assignment for {RUNNING}")


def _square_wave(seconds: float = 2.0, rate: int = 16000) -> bytes:
    """A small 16-bit mono WAV: a 400 Hz square wave."""
    samples = array.array("h", (8000 if (i // 20) % 2 else -8000 for i in range(int(seconds * rate))))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


def test_installed_agent_uploads_over_tls_with_its_own_key(deployment: Deployment, fleet: Fleet) -> None:
    """A recording dropped into the spool ends up under the agent's own prefix: MQTT and S3 over TLS with the
    private CA, through the S3 proxy, with the agent's least-privilege identity."""
    spool = deployment.path(RUNNING, "/var/lib/edgefleet/spool")
    (spool / "provisioned-probe.wav.part").write_bytes(_square_wave())
    (spool / "provisioned-probe.wav.part").rename(spool / "provisioned-probe.wav")
    admin = deployment.s3_client("admin")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        fleet.check_alive("upload")
        keys = [o.object_name for o in admin.list_objects(BUCKET, prefix=f"field/{RUNNING}/", recursive=True)]
        if any(k and "provisioned-probe" in k for k in keys):
            return
        time.sleep(0.5)
    pytest.fail(f"no upload of provisioned-probe under field/{RUNNING}/\n{fleet.all_logs()}")


def test_installed_dashboard_serves_https_and_lists_the_agent(deployment: Deployment, fleet: Fleet) -> None:
    base = f"https://127.0.0.1:{deployment.ports['dashboard']}"
    deadline = time.monotonic() + 45
    seen: object = None
    with httpx.Client(base_url=base, timeout=5, verify=ssl.create_default_context(cafile=deployment.ca_file)) as client:
        while time.monotonic() < deadline:
            fleet.check_alive("dashboard")
            try:
                login = client.post("/api/login", json={"username": "admin", "password": EXAMPLE_ADMIN_PASSWORD})
            except httpx.TransportError:
                time.sleep(0.3)
                continue
            assert login.status_code == 200, login.text
            assert all("secure" in c.lower() for c in login.headers.get_list("set-cookie"))
            seen = client.get("/api/agents").json()
            if RUNNING in str(seen):
                return
            time.sleep(0.5)
    pytest.fail(f"{RUNNING} not on the dashboard: {seen}\n{fleet.log_tail('dashboard')}")
