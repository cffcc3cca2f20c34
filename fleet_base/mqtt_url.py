"""``mqtt://user:pass@host:port`` (or ``mqtts://``) connection URLs, as in ``EDGEFLEET_MQTT_URL``.

TLS options ride along as query parameters of an ``mqtts://`` URL, each a path on the client's machine:
``cafile`` (the CA that signed the broker's certificate; default: the system's trusted CAs), ``certfile`` and
``keyfile`` (a client certificate and its key, for a broker that requires one; ``keyfile`` may be left out
when ``certfile`` holds the key too). Example:
``mqtts://pi-1:secret@broker.lan:8883?cafile=/etc/edgefleet/ca.pem&certfile=/etc/edgefleet/pi-1.pem&keyfile=/etc/edgefleet/pi-1.key``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ENV_VAR = "EDGEFLEET_MQTT_URL"
TLS_OPTIONS = ("cafile", "certfile", "keyfile")


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        given = [name for name in TLS_OPTIONS if getattr(self, name) is not None]
        if given and not self.tls:
            raise ValueError(f"MQTT URL options {given} need an mqtts:// URL")
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("MQTT URL option keyfile needs certfile")
        if any(not getattr(self, name) for name in given):
            raise ValueError(f"MQTT URL options must not be empty: {given}")

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"MQTT URL has no host: {url!r}")
        options: dict[str, str] = {}
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise ValueError(f"MQTT URL options must be name=value pairs joined by '&': {parts.query!r}") from None
        for key, value in pairs:
            if key not in TLS_OPTIONS:
                raise ValueError(f"MQTT URL has an unknown option {key!r} (known: {', '.join(TLS_OPTIONS)})")
            if key in options:
                raise ValueError(f"MQTT URL has option {key!r} twice")
            options[key] = value
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            **options,
        )

    def __str__(self) -> str:
        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(
            f"{name}={quote(value, safe='/')}" for name in TLS_OPTIONS if (value := getattr(self, name)) is not None
        )
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{host}:{self.port}{'?' + query if query else ''}"

    def redacted(self) -> str:
        """The URL for logs: the password replaced by ``***``; user, host and TLS file paths kept."""
        return str(replace(self, password="***" if self.password else None))
