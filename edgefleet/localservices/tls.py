"""A private certificate authority for the test and demo services: a CA, server and client certificates.

``CertificateAuthority(directory)`` makes (or reuses) ``ca.pem`` / ``ca.key`` in ``directory``; ``server(name,
hosts)`` and ``client(name)`` issue certificates signed by it, as PEM files next to it (keys mode 0600). Built
on the ``cryptography`` package (EC P-256 keys, SHA-256 signatures). The certificates are for local services on
127.0.0.1 / localhost: production certificates come from the operator or the Ansible role's CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 30


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, both PEM files."""

    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(pem)


def _subject_alt_names(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A self-signed CA in ``directory``; an existing ``ca.pem`` + ``ca.key`` pair there is reused."""

    def __init__(self, directory: Path, name: str = "edgefleet local CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert_file = self.directory / "ca.pem"
        key_file = self.directory / "ca.key"
        if self.cert_file.exists() and key_file.exists():
            self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file} is not an EC private key")
            self._key = loaded
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write_key(self._key, key_file)
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def server(self, name: str, hosts: tuple[str, ...] = LOCAL_HOSTS) -> CertFiles:
        """A server certificate for ``hosts`` (IP addresses or DNS names, all in the subjectAltName)."""
        return self._issue(name, ExtendedKeyUsageOID.SERVER_AUTH, _subject_alt_names(hosts))

    def client(self, name: str) -> CertFiles:
        """A client certificate with common name ``name`` (e.g. an agent id)."""
        return self._issue(name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(
        self, name: str, usage: x509.ObjectIdentifier, alt_names: x509.SubjectAlternativeName | None
    ) -> CertFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if alt_names is not None:
            builder = builder.add_extension(alt_names, critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        kind = "server" if usage == ExtendedKeyUsageOID.SERVER_AUTH else "client"
        files = CertFiles(self.directory / f"{kind}-{stem}.pem", self.directory / f"{kind}-{stem}.key")
        _write_key(key, files.key)
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return files
