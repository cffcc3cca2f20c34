#!/usr/bin/python
"""Module ``edgefleet_pki``: a private certificate authority and the central node's server certificates.

Runs where the CA key is kept (the Ansible control machine: the central role delegates it to ``localhost``), with
the ``cryptography`` package that ansible-core itself depends on. Everything lives in one folder (mode 0700):

    ca.key, ca.pem              the CA (EC P-256, made once, never replaced by this module)
    <name>.key, <name>.pem      one server key and certificate per entry of ``certs``

A certificate is (re)issued when it is missing, was not signed by ``ca.pem``, does not match its key, names other
hosts than asked (subject alternative names), or expires within ``renew_days``. Keys are kept across renewals.
Private keys are written 0600, certificates 0644. Idempotent: a second run with the same arguments changes nothing.

Self-contained on purpose (like every role file): the control machine has Ansible, not edgefleet, so this does not
import ``edgefleet.localservices.tls`` (the test services' CA), which does the same job for the tests and the demo.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: edgefleet_pki
short_description: Private CA and server certificates for edgefleet (cryptography, no collections)
description:
  - Creates a CA once and issues server certificates signed by it; reissues a certificate when its names, CA,
    key or remaining lifetime are not as asked.
options:
  dir: {description: Folder holding ca.key, ca.pem and the server keys and certificates, type: path, required: true}
  ca_common_name: {description: Subject CN of a new CA, type: str, default: edgefleet private CA}
  ca_days: {description: Lifetime of a new CA, type: int, default: 3650}
  cert_days: {description: Lifetime of a server certificate, type: int, default: 825}
  renew_days: {description: Reissue a server certificate expiring within this many days, type: int, default: 30}
  certs:
    description: Server certificates, each {name, names} (DNS names or IP addresses; the first is the CN)
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Make the CA and the broker certificate
  edgefleet_pki:
    dir: /home/me/fleet/inventory/prod/pki
    certs:
      - {name: broker, names: [central.example.org, 127.0.0.1]}
"""

RETURN = r"""
ca_created: {description: whether a new CA was made, type: bool, returned: always}
issued: {description: names of the certificates (re)issued, type: list, returned: always}
"""

# cryptography is imported lazily so the module fails with a clear message when it is missing.
CURVE_NAME = "secp256r1"


@dataclass(frozen=True)
class Wanted:
    name: str
    names: tuple[str, ...]


def _now() -> datetime.datetime:
    # datetime.timezone.utc, not datetime.UTC: the control machine may run Python 3.10 (ansible-core 2.16)
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with ``mode`` set before any byte lands (a key is never readable by others, not even briefly)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _general_names(names: tuple[str, ...]) -> list[Any]:
    from cryptography import x509

    result: list[Any] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _san_strings(cert: Any) -> set[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def _canonical(names: tuple[str, ...]) -> set[str]:
    out = set()
    for name in names:
        try:
            out.add(str(ipaddress.ip_address(name)))
        except ValueError:
            out.add(name)
    return out


def _not_after(cert: Any) -> datetime.datetime:
    """Expiry as an aware UTC datetime (``not_valid_after_utc`` needs cryptography 42)."""
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _load_cert(path: Path) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def _key_usage(*, ca: bool) -> Any:
    """A CA signs certificates and CRLs; a server (ECDSA) key only signs its handshakes."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(common_name: str, days: int) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca_key: Any, ca_cert: Any, key: Any, names: tuple[str, ...], days: int) -> Any:
    """A TLS server certificate for ``names`` (CN = the first), signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _now()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), _not_after(ca_cert)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def needs_reissue(cert: Any, key: Any, ca_cert: Any, names: tuple[str, ...], renew_days: int) -> str | None:
    """Why ``cert`` must be issued again, or None when it is fine."""
    from cryptography.hazmat.primitives import serialization

    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, raw) != key.public_key().public_bytes(
        serialization.Encoding.DER, raw
    ):
        return "does not match its key"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:
        return "not signed by the current CA"
    if _san_strings(cert) != _canonical(names):
        return f"names {sorted(_san_strings(cert))} instead of {sorted(_canonical(names))}"
    if _not_after(cert) - _now() < datetime.timedelta(days=renew_days):
        return f"expires {_not_after(cert):%Y-%m-%d}"
    return None


def ensure(
    folder: Path,
    wanted: list[Wanted],
    *,
    ca_common_name: str = "edgefleet private CA",
    ca_days: int = 3650,
    cert_days: int = 825,
    renew_days: int = 30,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Make whatever is missing or wrong in ``folder``; return what changed (and why)."""
    result: dict[str, Any] = {"changed": False, "ca_created": False, "issued": [], "reasons": {}}
    if not folder.is_dir():
        result["changed"] = True
        if check_mode:
            result["ca_created"] = True
            result["issued"] = [w.name for w in wanted]
            return result
        folder.mkdir(mode=0o700, parents=True)
    ca_key_path, ca_path = folder / "ca.key", folder / "ca.pem"
    if ca_path.exists():
        ca_cert = _load_cert(ca_path)
        ca_key = _load_key(ca_key_path) if ca_key_path.exists() else None
    else:
        if ca_key_path.exists():
            raise ValueError(f"{ca_key_path} exists without {ca_path}: restore ca.pem or remove both to make a new CA")
        result.update(changed=True, ca_created=True)
        if check_mode:
            result["issued"] = [w.name for w in wanted]
            return result
        ca_key, ca_cert = make_ca(ca_common_name, ca_days)
        _write(ca_key_path, _key_pem(ca_key), 0o600)
        _write(ca_path, _cert_pem(ca_cert), 0o644)
    for item in wanted:
        key_path, cert_path = folder / f"{item.name}.key", folder / f"{item.name}.pem"
        key = _load_key(key_path) if key_path.exists() else None
        reason = "missing"
        if key is not None and cert_path.exists():
            reason = needs_reissue(_load_cert(cert_path), key, ca_cert, item.names, renew_days) or ""
        if not reason:
            continue
        result["changed"] = True
        result["issued"].append(item.name)
        result["reasons"][item.name] = reason
        if check_mode:
            continue
        if ca_key is None:
            raise ValueError(f"{item.name}.pem must be (re)issued ({reason}) but {ca_key_path} is missing")
        if key is None:
            key = _new_key()
            _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, _cert_pem(issue(ca_key, ca_cert, key, item.names, cert_days)), 0o644)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "ca_common_name": {"type": "str", "default": "edgefleet private CA"},
            "ca_days": {"type": "int", "default": 3650},
            "cert_days": {"type": "int", "default": 825},
            "renew_days": {"type": "int", "default": 30},
            "certs": {"type": "list", "elements": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        import cryptography  # noqa: F401
    except ImportError:
        module.fail_json(msg="edgefleet_pki needs the Python package 'cryptography' (ansible-core depends on it)")
    p = module.params
    try:
        wanted = [Wanted(str(c["name"]), tuple(str(n) for n in c["names"])) for c in p["certs"]]
    except (KeyError, TypeError) as exc:
        module.fail_json(msg=f"every entry of certs needs name and names: {exc}")
    if any(not w.names for w in wanted):
        module.fail_json(msg="every certificate needs at least one name")
    try:
        result = ensure(
            Path(p["dir"]),
            wanted,
            ca_common_name=p["ca_common_name"],
            ca_days=p["ca_days"],
            cert_days=p["cert_days"],
            renew_days=p["renew_days"],
            check_mode=module.check_mode,
        )
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
