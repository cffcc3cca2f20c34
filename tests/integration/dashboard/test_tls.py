"""``edgefleet dashboard`` as a real process serving https with a certificate made here: log in, Secure cookie, HSTS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.store.database import create_all, make_engine
from edgefleet.demo.tomlw import dumps as toml_dumps
from edgefleet.localservices.process import free_port
from tests.integration.dashboard.conftest import csrf_in
from tests.integration.dashboard.seed import PASSWORDS, USERS
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
ROOT = Path(__file__).parents[3]


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(
        subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("edgefleet test CA", "edgefleet test CA", ca_key, ca_key, ca=True)
    server = build("127.0.0.1", "edgefleet test CA", server_key, ca_key, ca=False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].chmod(0o600)
    return paths


@pytest.fixture
def https_dashboard(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    config = tmp_path / "dashboard.toml"
    config.write_text(
        toml_dumps(
            {
                "database_url": f"sqlite:///{tmp_path / 'controller.db'}",
                "host": "127.0.0.1",
                "port": port,
                "secret_key": "tls-test-secret-0123456789",
                "tls_cert_file": str(cert),
                "tls_key_file": str(key),
                "users": USERS,
            }
        )
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'controller.db'}")
    create_all(engine)  # the controller's migrations: the dashboard refuses a database without them
    engine.dispose()
    log = (tmp_path / "dashboard.log").open("wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgefleet.cli", "dashboard", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url, context = f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(ca))

    def log_text() -> str:
        return (tmp_path / "dashboard.log").read_text()

    def answers() -> bool:
        assert process.poll() is None, log_text()
        try:
            return httpx.get(f"{url}/login", verify=context, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout=60, what=lambda: f"the dashboard on {url}: {log_text()}")
        yield url, context
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    assert f"edgefleet dashboard on https://127.0.0.1:{port}/" in log_text()


def test_login_over_https_sets_a_secure_cookie(https_dashboard: tuple[str, ssl.SSLContext]) -> None:
    url, context = https_dashboard
    with httpx.Client(base_url=url, verify=context, timeout=10) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = csrf_in(page.text)
        answer = client.post("/login", data={"username": "olga", "password": PASSWORDS["olga"], "csrf_token": token})
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        attributes = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite"} <= attributes
        assert "samesite=lax" in cookie.lower()
        me = client.get("/api/me")
        assert me.status_code == 200
        assert me.json()["user"] == "olga"
        assert me.headers["strict-transport-security"].startswith("max-age=")
    with pytest.raises(httpx.ConnectError):  # a certificate nobody vouched for is refused
        httpx.get(f"{url}/login", timeout=10)
