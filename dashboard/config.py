"""``dashboard.toml``: one validated settings object (docs/dashboard.md, "Configuration").

Unknown keys are an error that names the key, so a typo never passes silently. The environment
variable ``EDGEFLEET_DATABASE_URL`` overrides ``database_url``.

The thermal limits of the badges and the "hot" filter are the controller's policy's: ``controller_config`` names the
controller's configuration file and its ``[policy]`` is read from there (``controller.config.load_policy``).
The dashboard's own ``soft_limit_c``/``hard_limit_c`` are deprecated: still honoured without
``controller_config`` (with a warning), an error beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, FilePath, PrivateAttr, field_validator, model_validator

from controller.config import load_policy
from controller.policy import PolicyConfig
from fleet_base.configfile import DATABASE_ENV, S3_ENV, ConfigError, S3Section, Section, parse_model, read_toml
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.topics import validate_agent_id

log = logging.getLogger(__name__)

DEPRECATED_LIMITS = ("soft_limit_c", "hard_limit_c")

__all__ = [
    "ConfigError",
    "DashboardConfig",
    "DashboardS3Section",
    "MqttConfig",
    "Role",
    "UserConfig",
    "load_config",
    "parse_config",
]


class Role(StrEnum):
    OPERATOR = "operator"
    VIEWER = "viewer"


class UserConfig(Section):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    password_hash: str
    role: Role = Role.VIEWER

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, value: str) -> str:
        if not value.startswith(("$2a$", "$2b$", "$2y$")) or len(value) != 60:
            raise ValueError("password_hash must be a bcrypt hash (`edgefleet dashboard --hash-password`)")
        return value


class DashboardS3Section(S3Section):
    """Read access to the recordings (play, spectrogram, download the original; docs/dashboard.md, "Listening
    and downloads"): the connection as the controller's ``[s3]``, plus the limits of what the dashboard does."""

    #: streams of one user at once (a player asks for byte ranges; a seek may open another before the last ends)
    streams_per_user: Annotated[int, Field(ge=1, le=64)] = 4
    #: original-WAV downloads of one user at once, and of everyone (each rebuilds and decodes in a thread)
    downloads_per_user: Annotated[int, Field(ge=1, le=64)] = 2
    downloads_total: Annotated[int, Field(ge=1, le=1024)] = 8
    #: spectrogram images: where they are cached, how much the cache may hold, the image size
    spectrogram_cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "edgefleet" / "spectrograms")
    spectrogram_cache_bytes: Annotated[int, Field(ge=1 << 20)] = 256 << 20
    spectrogram_width: Annotated[int, Field(ge=64, le=4096)] = 1024
    spectrogram_height: Annotated[int, Field(ge=32, le=2048)] = 256
    #: threads that compute spectrograms; at most this many computations run, ``spectrogram_queue`` wait
    spectrogram_workers: Annotated[int, Field(ge=1, le=16)] = 2
    spectrogram_queue: Annotated[int, Field(ge=0, le=1000)] = 8
    #: one spectrogram's time limit (a long recording is decoded whole)
    spectrogram_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class MqttConfig(Section):
    """``[mqtt]``: queue control (docs/queue-control.md). The dashboard's own broker user (role ``dashboard``);
    its user name is the requester in the reply topics, so it follows the agent-id rules."""

    url: str
    reply_timeout_s: Annotated[float, Field(ge=1, le=120)] = 10.0  # an agent that does not answer by then is "offline"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = MqttUrl.parse(value)
        if not parsed.username:
            raise ValueError("the MQTT URL needs the dashboard's broker user and password")
        validate_agent_id(parsed.username)
        return value

    @property
    def parsed(self) -> MqttUrl:
        return MqttUrl.parse(self.url)


class DashboardConfig(Section):
    database_url: str
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    secret_key: Annotated[str, Field(min_length=16)]
    users: list[UserConfig] = Field(default_factory=list)
    # Optional TLS, login, session, display and cache settings:
    tls_cert_file: FilePath | None = None  # with tls_key_file: uvicorn serves https itself
    tls_key_file: FilePath | None = None
    behind_tls_proxy: bool = False  # a reverse proxy terminates TLS in front of us
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])  # may set X-Forwarded-For/-Proto
    secure_cookies: bool = False  # the older name of behind_tls_proxy (same effect)
    session_max_age_s: Annotated[int, Field(ge=60)] = 12 * 3600
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5  # per user name, before backoff starts
    login_max_failures_per_address: Annotated[int, Field(ge=1, le=10_000)] = 20  # per client address (IPv6: /64)
    login_backoff_base_s: Annotated[float, Field(gt=0, le=3600)] = 1.0  # first wait; doubles per further failure
    login_backoff_max_s: Annotated[float, Field(gt=0, le=86_400)] = 900.0  # longest wait; quiet this long: forgotten
    live_interval_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    snapshot_max_age_s: Annotated[float, Field(ge=0, le=60)] = 1.0  # pages reuse a fleet read this young
    #: older than snapshot_max_age_s by less than this: served as it is while one background read renews it
    snapshot_stale_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    page_size: Annotated[int, Field(ge=10, le=10_000)] = 200  # fleet table rows per page
    metrics_cache_s: Annotated[float, Field(ge=0)] = 5.0  # /metrics is formatted at most this often
    offline_after_s: Annotated[float, Field(gt=0)] = 60.0
    #: at start, how long to wait for the controller to migrate a database that is behind, before refusing
    schema_wait_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    #: the controller's configuration file: badges and the hot filter use the thermal limits of its ``[policy]``
    controller_config: FilePath | None = None
    #: queue control over MQTT (none: the queue panel says it is not configured)
    mqtt: MqttConfig | None = None
    #: deprecated (the dashboard's own copy of the limits, which could disagree with the policy)
    soft_limit_c: float | None = None
    hard_limit_c: float | None = None
    #: the bucket, read only: recordings can be played, shown and downloaded (else their pages show facts only)
    s3: DashboardS3Section | None = None

    _policy: PolicyConfig = PrivateAttr(default_factory=PolicyConfig)

    @model_validator(mode="after")
    def _unique_users(self) -> DashboardConfig:
        names = [u.name for u in self.users]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate user name(s): {', '.join(duplicated)}")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.login_backoff_base_s > self.login_backoff_max_s:
            raise ValueError("login_backoff_base_s must not exceed login_backoff_max_s")
        return self

    @model_validator(mode="after")
    def _thermal_limits(self) -> DashboardConfig:
        own = {name: value for name in DEPRECATED_LIMITS if (value := getattr(self, name)) is not None}
        if self.controller_config is not None:
            if own:
                raise ValueError(
                    f"{' and '.join(own)} cannot be set with controller_config: the thermal limits are the "
                    "controller's [policy] (remove them here)"
                )
            self._policy = load_policy(self.controller_config)
        elif own:
            log.warning(
                "dashboard configuration: %s is deprecated: set controller_config to the controller's configuration "
                "file so that the badges use the thermal limits of its [policy] (they may disagree now)",
                " and ".join(own),
            )
            self._policy = PolicyConfig(**own)
        return self

    @property
    def policy(self) -> PolicyConfig:
        """The controller's policy configuration (its thermal limits): from ``controller_config``, else the
        deprecated ``soft_limit_c``/``hard_limit_c`` over the policy's defaults, else the policy's defaults."""
        return self._policy

    @property
    def serves_tls(self) -> bool:
        """uvicorn itself speaks TLS."""
        return self.tls_cert_file is not None

    @property
    def over_tls(self) -> bool:
        """Browsers reach us over https (ourselves or through a proxy): Secure cookies and HSTS."""
        return self.serves_tls or self.behind_tls_proxy or self.secure_cookies

    def user(self, name: str) -> UserConfig | None:
        return next((u for u in self.users if u.name == name), None)


def parse_config(
    data: Mapping[str, object], env: Mapping[str, str] | None = None, source: str = "config"
) -> DashboardConfig:
    return parse_model(
        DashboardConfig, data, env or {}, {**DATABASE_ENV, **S3_ENV}, f"dashboard configuration ({source})"
    )


def load_config(path: Path, env: Mapping[str, str] | None = None) -> DashboardConfig:
    return parse_config(read_toml(path), env, source=str(path))
