"""The central role's ``edgefleet_pki`` module: a CA made once, server certificates (re)issued only when needed.

File I/O in a temporary folder; the last test makes a real TLS handshake with what the module wrote.
"""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from tests.unit.ansible.plugins import load_plugin

pki = load_plugin("central/library/edgefleet_pki.py")
BROKER = pki.Wanted("broker", ("central.example.org", "127.0.0.1", "localhost"))
S3 = pki.Wanted("s3", ("central.example.org", "127.0.0.1"))


def _names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def test_first_run_makes_the_ca_and_every_certificate_with_private_keys_0600(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    result = pki.ensure(folder, [BROKER, S3])
    assert (result["changed"], result["ca_created"], result["issued"]) == (True, True, ["broker", "s3"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ca", "broker", "s3"):
        assert stat.S_IMODE((folder / f"{name}.key").stat().st_mode) == 0o600, name
        assert stat.S_IMODE((folder / f"{name}.pem").stat().st_mode) == 0o644, name
    assert _names(folder / "broker.pem") == {"central.example.org", "127.0.0.1", "localhost"}
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    x509.load_pem_x509_certificate((folder / "s3.pem").read_bytes()).verify_directly_issued_by(ca)


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    pki.ensure(tmp_path, [BROKER, S3])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = pki.ensure(tmp_path, [BROKER, S3])
    assert (result["changed"], result["issued"]) == (False, [])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("names", "names"),
        ("new CA", "not signed by the current CA"),
        ("new key", "does not match its key"),
        ("expiring", "expires"),
        ("deleted", "missing"),
    ],
)
def test_a_certificate_is_reissued_when_it_no_longer_fits(tmp_path: Path, change: str, reason: str) -> None:
    pki.ensure(tmp_path, [BROKER, S3])
    wanted = [BROKER, S3]
    key_before = (tmp_path / "broker.key").read_bytes()
    renew_days = 30
    if change == "names":
        wanted = [pki.Wanted("broker", ("central.example.org", "192.0.2.10")), S3]
    elif change == "new CA":
        key, cert = pki.make_ca("another CA", 100)
        (tmp_path / "ca.key").write_bytes(pki._key_pem(key))
        (tmp_path / "ca.pem").write_bytes(pki._cert_pem(cert))
    elif change == "new key":
        (tmp_path / "broker.key").write_bytes(pki._key_pem(pki._new_key()))
        key_before = (tmp_path / "broker.key").read_bytes()
    elif change == "expiring":
        renew_days = 10_000
    else:
        (tmp_path / "broker.pem").unlink()
    result = pki.ensure(tmp_path, wanted, renew_days=renew_days)
    assert "broker" in result["issued"]
    assert reason in result["reasons"]["broker"]
    assert (tmp_path / "broker.key").read_bytes() == key_before  # the key survives a renewal
    assert (
        pki.needs_reissue(
            x509.load_pem_x509_certificate((tmp_path / "broker.pem").read_bytes()),
            pki._load_key(tmp_path / "broker.key"),
            pki._load_cert(tmp_path / "ca.pem"),
            wanted[0].names,
            30,
        )
        is None
    )


def test_check_mode_reports_without_writing(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    result = pki.ensure(folder, [BROKER], check_mode=True)
    assert (result["changed"], result["ca_created"], result["issued"]) == (True, True, ["broker"])
    assert not folder.exists()


def test_a_lost_ca_certificate_is_an_error_not_a_silent_new_ca(tmp_path: Path) -> None:
    pki.ensure(tmp_path, [BROKER])
    (tmp_path / "ca.pem").unlink()
    with pytest.raises(ValueError, match=r"ca\.key exists without"):
        pki.ensure(tmp_path, [BROKER])


def test_operator_certificates_without_the_ca_key_are_used_as_they_are(tmp_path: Path) -> None:
    pki.ensure(tmp_path, [BROKER])
    (tmp_path / "ca.key").unlink()  # the operator keeps the CA key elsewhere
    assert pki.ensure(tmp_path, [BROKER])["changed"] is False
    with pytest.raises(ValueError, match=r"ca\.key is missing"):
        pki.ensure(tmp_path, [pki.Wanted("broker", ("elsewhere.example.org",))])


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str) -> bytes:
    """One TLS connection to a local server presenting ``server_ctx``'s certificate; what the server sent."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused the certificate

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=30) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                return tls.recv(2)
        finally:
            thread.join(timeout=30)


def test_a_tls_client_trusting_only_the_ca_accepts_the_server_under_each_name(tmp_path: Path) -> None:
    pki.ensure(tmp_path, [BROKER])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "broker.pem", tmp_path / "broker.key")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    for name in BROKER.names:
        assert _handshake(server_ctx, client_ctx, name) == b"ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, client_ctx, "not-in-the-certificate.example.org")
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that trusts only the system CAs
        _handshake(server_ctx, ssl.create_default_context(), "localhost")
