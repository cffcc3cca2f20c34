"""The pure parts of the local services: broker password lines and ACL, the private CA's certificates."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from edgefleet.localservices.mosquitto import MqttUser, acl_lines, password_line
from edgefleet.localservices.tls import CertificateAuthority

# written by `mosquitto_passwd -b passwd alice secret` (Mosquitto 2.0.11)
MOSQUITTO_LINE = (
    "alice:$7$101$Bg20hslDak8AHc38$"
    "U1ItuGE8kg36S1M3vo/H2t0puxs7HCjJedlSrgOcTC1e8qpF1mi+QWqVOrCmubB9PXLeG4/jlFyqGX5zqUsGNA=="
)


def test_password_lines_are_what_mosquitto_passwd_writes() -> None:
    salt = base64.b64decode(MOSQUITTO_LINE.split("$")[3])
    assert password_line("alice", "secret", salt) == MOSQUITTO_LINE
    assert password_line("alice", "secret") != password_line("alice", "secret")  # a fresh salt each time


def test_acl_an_agent_writes_its_own_channels_and_reads_its_assignment() -> None:
    lines = acl_lines([MqttUser("pi-1", "x"), MqttUser("ctl", "y", "controller")])
    agent = lines[: lines.index("")]
    assert agent[0] == "user pi-1"
    assert {ln for ln in agent if ln.startswith("topic write")} == {
        *(f"topic write edgefleet/v1/agents/pi-1/{c}" for c in ("birth", "state", "telemetry", "events")),
        "topic write edgefleet/v1/replies/+/pi-1/queue",  # queue control: replies carrying its own id only
    }
    assert {ln for ln in agent if ln.startswith("topic read")} == {
        "topic read edgefleet/v1/agents/pi-1/assignment",
        "topic read edgefleet/v1/controller/state",
        "topic read edgefleet/v1/agents/pi-1/queue/request",
    }
    assert "topic readwrite edgefleet/v1/#" in lines[lines.index("user ctl") :]


def test_acl_a_dashboard_asks_any_agent_and_reads_only_its_own_replies() -> None:
    lines = acl_lines([MqttUser("dash", "x", "dashboard")])
    assert lines == [
        "user dash",
        "topic write edgefleet/v1/agents/+/queue/request",
        "topic read edgefleet/v1/replies/dash/+/queue",
        "",
    ]


def test_acl_a_monitor_reads_only_sys() -> None:
    lines = acl_lines([MqttUser("central-monitor", "x", "monitor")])
    assert lines == ["user central-monitor", "topic read $SYS/#", ""]


def _verify(ca: CertificateAuthority, cert_file: Path, host: str) -> None:
    store = Store([x509.load_pem_x509_certificate(ca.cert_file.read_bytes())])
    builder = PolicyBuilder().store(store).time(datetime.datetime.now(datetime.UTC))
    subject: x509.verification.Subject
    try:
        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = builder.build_server_verifier(subject)
    verifier.verify(x509.load_pem_x509_certificate(cert_file.read_bytes()), [])


def test_server_certificates_verify_for_their_hosts_only(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    server = ca.server("broker")
    for host in ("127.0.0.1", "localhost"):
        _verify(ca, server.cert, host)
    with pytest.raises(VerificationError):
        _verify(ca, server.cert, "broker.example.org")
    with pytest.raises(VerificationError):
        _verify(CertificateAuthority(tmp_path / "other"), server.cert, "127.0.0.1")


def test_the_ca_is_reused_and_keys_are_private(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    again = CertificateAuthority(tmp_path)
    assert again.cert_file.read_bytes() == ca.cert_file.read_bytes()
    client = again.client("pi/1")  # an odd name makes a safe file name
    assert client.cert.name == "client-pi_1.pem"
    cert = x509.load_pem_x509_certificate(client.cert.read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "pi/1"
    assert cert.issuer == x509.load_pem_x509_certificate(ca.cert_file.read_bytes()).subject
    for key in (tmp_path / "ca.key", client.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
