"""S3 connection settings from flags or ``EDGEFLEET_S3_*`` environment variables.

An ``https://`` endpoint is TLS with the server's certificate checked: against ``ca_file`` when set (a private
CA, ``EDGEFLEET_S3_CA_FILE`` / ``--s3-ca-file``), else against ``SSL_CERT_FILE`` or the certifi bundle.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import urllib3
    from minio import Minio

ENV = {
    "endpoint": "EDGEFLEET_S3_ENDPOINT",
    "access_key": "EDGEFLEET_S3_ACCESS_KEY",
    "secret_key": "EDGEFLEET_S3_SECRET_KEY",
    "bucket": "EDGEFLEET_S3_BUCKET",
    "region": "EDGEFLEET_S3_REGION",
    "ca_file": "EDGEFLEET_S3_CA_FILE",
}
DEFAULTS = {"region": "us-east-1", "ca_file": ""}


class S3SettingsError(ValueError):
    """Missing or malformed S3 settings."""


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # URL, e.g. http://127.0.0.1:9000 or https://s3.lan:9000
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    ca_file: str = ""  # PEM file of the CA that signed the https endpoint's certificate ("" = default trust)

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise S3SettingsError(f"S3 endpoint must be an http(s) URL, got {self.endpoint!r}")
        if parts.path not in ("", "/"):
            raise S3SettingsError(f"S3 endpoint must not have a path: {self.endpoint!r}")
        for name in ("access_key", "secret_key", "bucket"):
            if not getattr(self, name):
                raise S3SettingsError(f"S3 {name} is not set (flag --s3-{name.replace('_', '-')} or {ENV[name]})")
        if self.ca_file and parts.scheme != "https":
            raise S3SettingsError(f"S3 ca_file is set but the endpoint is not https: {self.endpoint!r}")

    @property
    def secure(self) -> bool:
        return urlsplit(self.endpoint).scheme == "https"

    @property
    def netloc(self) -> str:
        return urlsplit(self.endpoint).netloc

    @property
    def ca_certs(self) -> str:
        """The CA bundle that https connections trust."""
        if self.ca_file:
            return self.ca_file
        import certifi

        return os.environ.get("SSL_CERT_FILE") or certifi.where()

    def http_pool(self, **kwargs: Any) -> urllib3.PoolManager:
        """A urllib3 pool that verifies the server against :attr:`ca_certs` (``kwargs``: timeouts, retries...)."""
        import urllib3

        return urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=self.ca_certs, **kwargs)

    def client(self, http_client: urllib3.PoolManager | None = None) -> Minio:
        """A client of this store; ``http_client``: its connection pool (default: for https, :meth:`http_pool`;
        for http, minio's own)."""
        from minio import Minio

        return Minio(
            self.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
            http_client=http_client if http_client is not None else self.http_pool() if self.secure else None,
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> S3Settings:
        """Explicit values win; missing ones come from the environment."""
        env = os.environ if env is None else env
        merged = {name: values.get(name) or env.get(var, "") or DEFAULTS.get(name, "") for name, var in ENV.items()}
        if not merged["endpoint"]:
            raise S3SettingsError(f"S3 endpoint is not set (flag --s3-endpoint or {ENV['endpoint']})")
        return cls(**{k: str(v) for k, v in merged.items()})

    def as_dict(self) -> dict[str, str]:
        """Every field by name (the ``[s3]`` table of a config file)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


#: flag name -> (metavar, help) of the S3 flags
_FLAG_HELP = {
    "endpoint": ("URL", "the S3 server, e.g. http://127.0.0.1:8333"),
    "access_key": ("KEY", "access key id"),
    "secret_key": ("SECRET", "secret key; prefer the variable, a flag shows in ps"),
    "bucket": ("BUCKET", "bucket name"),
    "region": ("REGION", "region, us-east-1 when neither is set"),
    "ca_file": ("PEM", "CA certificate that signed an https endpoint's certificate (a private CA)"),
}


def add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "S3", "Each flag defaults to its environment variable; 'edgefleet demo' prints them ready to export."
    )
    for name, var in ENV.items():
        metavar, text = _FLAG_HELP[name]
        flag = f"--s3-{name.replace('_', '-')}"
        group.add_argument(flag, dest=f"s3_{name}", metavar=metavar, default=None, help=f"{text} (default: ${var})")


def s3_settings_from_args(args: argparse.Namespace) -> S3Settings:
    return S3Settings.from_mapping({name: getattr(args, f"s3_{name}", None) for name in ENV})
