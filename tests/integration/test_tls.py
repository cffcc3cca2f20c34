"""TLS on the real services: Mosquitto with a TLS listener (and client certificates), SeaweedFS S3 over https,
both with a private CA; and a real agent and a real controller that upload, report and assign over them."""

from __future__ import annotations

import io
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import urllib3
from minio.error import S3Error
from sqlmodel import Session

from controller.config import parse_config
from controller.service.app import Controller
from controller.service.janitor import list_pending
from controller.store import repo
from controller.store.models import UploadEvent
from edge_agent.service.engine_adapter import build_engine
from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.localservices.tls import CertificateAuthority
from fleet_base.mqtt_url import MqttUrl
from fleet_base.paho import paho_client
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.integration.edge_agent.service.helpers import RunningAgent, agent_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
AGENT = "pi-tls"


def connects(url: MqttUrl, client_id: str = "tls-probe") -> bool:
    """Whether a client with ``url`` gets a CONNACK with success (False: TLS or login refused)."""
    client = paho_client(url, client_id)
    connected, done = threading.Event(), threading.Event()

    def on_connect(_c: object, _u: object, _f: object, rc: object, _p: object) -> None:
        if getattr(rc, "value", 1) == 0:
            connected.set()
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *_a: done.set()
    try:
        client.connect(url.host, url.port)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        done.wait(10)
        return connected.is_set()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(directory=tmp_path_factory.mktemp("mqtt-tls"), persistence=False, tls=True)
    broker.add_user("controller", role="controller")
    broker.add_user(AGENT)
    with broker:
        yield broker


def test_the_tls_listener_needs_the_ca_and_speaks_no_plain_mqtt(tls_broker: Mosquitto, tmp_path: Path) -> None:
    url = MqttUrl.parse(tls_broker.url_for(AGENT))
    assert url.tls
    assert url.cafile == str(tls_broker.ca.cert_file)
    assert connects(url)
    assert not connects(replace(url, cafile=None)), "the system CAs must not trust a private CA"
    other_ca = CertificateAuthority(tmp_path / "other")
    assert not connects(replace(url, cafile=str(other_ca.cert_file)))
    assert not connects(replace(url, tls=False, cafile=None)), "plain MQTT on the TLS port"
    assert not connects(replace(url, password="wrong")), "TLS does not replace the password"


def test_client_certificates_when_required(tmp_path: Path) -> None:
    with Mosquitto(directory=tmp_path, persistence=False, tls=True, require_certificate=True) as broker:
        broker.add_user(AGENT)
        url = MqttUrl.parse(broker.url_for(AGENT))
        assert url.certfile
        assert url.keyfile
        assert connects(url)
        assert not connects(replace(url, certfile=None, keyfile=None)), "no client certificate"
        stranger = CertificateAuthority(tmp_path / "stranger").client(AGENT)
        assert not connects(replace(url, certfile=str(stranger.cert), keyfile=str(stranger.key)))


def test_s3_over_https_with_a_private_ca(tmp_path: Path) -> None:
    with SeaweedS3(directory=tmp_path / "s3", tls=True) as s3:
        assert s3.endpoint.startswith("https://")
        client = s3.client()
        client.put_object(s3.bucket, "tls/probe", io.BytesIO(b"over tls"), 8)
        assert client.get_object(s3.bucket, "tls/probe").read() == b"over tls"
        untrusting = replace(s3.settings(), ca_file="")
        with pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.client().bucket_exists(s3.bucket)
        plain = replace(s3.settings(), endpoint=s3.endpoint.replace("https://", "http://"), ca_file="")
        with pytest.raises(S3Error, match="BadRequest"):  # Go's answer to plain HTTP on a TLS port
            plain.client().stat_object(s3.bucket, "tls/probe")


def test_an_agent_and_a_controller_work_over_tls(tmp_path: Path) -> None:
    """The whole path over TLS with client certificates and least-privilege identities: the agent logs in over
    mqtts, gets its assignment from the controller, uploads a recording over https with its own S3 identity,
    and the controller stores the completion event; the controller's janitor identity lists uploads over https."""
    broker = Mosquitto(directory=tmp_path / "mqtt", persistence=False, tls=True, require_certificate=True)
    broker.add_user("controller", role="controller")
    broker.add_user(AGENT)
    s3 = SeaweedS3(directory=tmp_path / "s3", tls=True)
    agent_identity = s3.add_agent_identity(AGENT, "tls")
    janitor = s3.add_janitor_identity()
    with broker, s3:
        controller_s3 = s3.settings(janitor)
        controller = Controller(
            parse_config(
                {
                    "database_url": f"sqlite:///{tmp_path / 'controller.db'}",
                    "database_migrate": True,
                    "tick_seconds": 0.2,
                    "flush_interval_s": 0.05,
                    "mqtt": {"url": broker.url_for("controller")},
                    "s3": controller_s3.as_dict(),
                },
                env={},
            )
        ).start()
        agent: RunningAgent | None = None
        try:
            assert controller.link.wait_connected(20), "the controller did not connect over mqtts"
            settings = s3.settings(agent_identity)
            config = agent_config(
                tmp_path, AGENT, broker.url_for(AGENT), s3={**settings.as_dict(), "prefix": "tls"}, site="tls"
            )
            agent = running = RunningAgent(config, engine_factory=build_engine)
            wait_for(lambda: running.runtime.service.assignment, 60, "an assignment over mqtts")
            recording = write_wav(config.spool_dir / "dusk.wav", seconds=6, seed=3)
            stored = wait_for(lambda: _completed(controller, AGENT), 60, "the upload's completion event stored")
            assert stored[0].key.startswith(f"tls/{AGENT}/")
            assert s3.client().stat_object(s3.bucket, stored[0].key).size == stored[0].stored_bytes
            assert recording.name == stored[0].file
            assert controller.config.s3 is not None
            assert controller.config.s3.settings().ca_file == s3.ca_file
            assert list(list_pending(controller.config.s3.settings().client(), s3.bucket)) == []
        finally:
            if agent is not None:
                agent.stop()
            controller.stop()


def _completed(controller: Controller, agent_id: str) -> list[UploadEvent]:
    with Session(controller.engine) as session:
        return repo.recent_events(session, agent_id=agent_id, kinds=[EventKind.UPLOAD_COMPLETED.value])
