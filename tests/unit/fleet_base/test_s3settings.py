"""S3 settings: flags over environment, https with a private CA (``ca_file``), and the errors that name the fix."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from fleet_base.s3settings import S3Settings, S3SettingsError, add_s3_arguments, s3_settings_from_args


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    settings = S3Settings("https://s3.lan:9000", "a", "s", "b", ca_file=str(tmp_path / "ca.pem"))
    assert settings.secure
    assert settings.ca_certs == str(tmp_path / "ca.pem")
    pool = settings.http_pool(maxsize=3)
    assert pool.connection_pool_kw["ca_certs"] == str(tmp_path / "ca.pem")
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"


def test_without_ca_file_the_default_trust_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert S3Settings("https://s3.example.org", "a", "s", "b").ca_certs == certifi.where()
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    assert S3Settings("https://s3.example.org", "a", "s", "b").ca_certs == "/etc/ssl/certs/ca-certificates.crt"


def test_the_minio_client_trusts_the_ca_file(tmp_path: Path) -> None:
    from edgefleet.localservices.tls import CertificateAuthority

    ca = CertificateAuthority(tmp_path)
    client = S3Settings("https://127.0.0.1:9", "a", "s", "b", ca_file=str(ca.cert_file)).client()
    pool = client._http  # minio keeps the pool it was given
    assert pool.connection_pool_kw["ca_certs"] == str(ca.cert_file)
    ssl.create_default_context(cafile=pool.connection_pool_kw["ca_certs"])  # a CA file ssl can load


@pytest.mark.parametrize(
    ("endpoint", "ca_file", "problem"),
    [
        ("http://s3.lan:9000", "/etc/ca.pem", "not https"),
        ("ftp://s3.lan", "", "http\\(s\\) URL"),
        ("https://s3.lan/bucket", "", "must not have a path"),
    ],
)
def test_bad_settings_say_what_is_wrong(endpoint: str, ca_file: str, problem: str) -> None:
    with pytest.raises(S3SettingsError, match=problem):
        S3Settings(endpoint, "a", "s", "b", ca_file=ca_file)


def test_flag_and_environment(tmp_path: Path) -> None:
    env = {
        "EDGEFLEET_S3_ENDPOINT": "https://s3.lan",
        "EDGEFLEET_S3_ACCESS_KEY": "a",
        "EDGEFLEET_S3_SECRET_KEY": "s",
        "EDGEFLEET_S3_BUCKET": "b",
        "EDGEFLEET_S3_CA_FILE": "/env/ca.pem",
    }
    assert S3Settings.from_mapping({}, env).ca_file == "/env/ca.pem"
    assert S3Settings.from_mapping({"ca_file": "/flag/ca.pem"}, env).ca_file == "/flag/ca.pem"
    assert S3Settings.from_mapping({}, {**env, "EDGEFLEET_S3_CA_FILE": ""}).ca_file == ""
    parser = argparse.ArgumentParser()
    add_s3_arguments(parser)
    flags = {"endpoint": "https://s3.lan", "access-key": "a", "secret-key": "s", "bucket": "b"}
    argv = [arg for name, value in flags.items() for arg in (f"--s3-{name}", value)]
    args = parser.parse_args([*argv, "--s3-ca-file", str(tmp_path / "ca.pem")])
    assert s3_settings_from_args(args).ca_file == str(tmp_path / "ca.pem")
    assert "--s3-ca-file" in parser.format_help()
