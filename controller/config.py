"""``controller.toml`` (team CONFIG.md): one validated settings object; environment variables override the file.

Unknown keys are an error with the key's path in the message. Overrides: ``EDGEFLEET_MQTT_URL``,
``EDGEFLEET_DATABASE_URL``, ``EDGEFLEET_S3_ENDPOINT|ACCESS_KEY|SECRET_KEY|BUCKET``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.policy import PolicyConfig
from controller.store.engine import DEFAULT_DATABASE_URL
from edge_agent.s3settings import S3Settings, S3SettingsError
from fleet_protocol import is_valid_window
from fleet_protocol.mqtt_url import MqttUrl

ENV_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "EDGEFLEET_MQTT_URL": ("mqtt", "url"),
    "EDGEFLEET_DATABASE_URL": (None, "database_url"),
    "EDGEFLEET_S3_ENDPOINT": ("s3", "endpoint"),
    "EDGEFLEET_S3_ACCESS_KEY": ("s3", "access_key"),
    "EDGEFLEET_S3_SECRET_KEY": ("s3", "secret_key"),
    "EDGEFLEET_S3_BUCKET": ("s3", "bucket"),
}


class ConfigError(ValueError):
    """The configuration file or its overrides are unusable; the message says what and where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_windows(windows: list[str]) -> list[str]:
    bad = [w for w in windows if not is_valid_window(w)]
    if bad:
        raise ValueError(f"invalid window(s) {bad}: use 'HH:MM-HH:MM'")
    return windows


class MqttSection(_Section):
    url: str

    @field_validator("url")
    @classmethod
    def _parse(cls, value: str) -> str:
        MqttUrl.parse(value)
        return value

    @property
    def parsed(self) -> MqttUrl:
        return MqttUrl.parse(self.url)


class S3Section(_Section):
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    stale_upload_hours: float = Field(default=24.0, gt=0)
    janitor_interval_s: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> S3Section:
        try:
            self.settings()
        except S3SettingsError as exc:
            raise ValueError(str(exc)) from None
        return self

    def settings(self) -> S3Settings:
        return S3Settings(self.endpoint, self.access_key, self.secret_key, self.bucket, self.region)


class SiteSection(_Section):
    uplink_bps: int | None = Field(default=None, ge=0)
    windows: list[str] | None = None

    _windows = field_validator("windows")(lambda cls, v: None if v is None else _check_windows(v))


class PolicySection(_Section):
    soft_limit_c: float = 70.0
    hard_limit_c: float = 80.0
    cool_margin_c: float = Field(default=5.0, ge=0)
    cool_hold_s: float = Field(default=60.0, ge=0)
    site_uplink_bps: int = Field(default=12_500_000, ge=0)
    windows: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(default=8, ge=1, le=64)
    ram_budget_fraction: float = Field(default=0.25, gt=0, le=1)
    default_compression_level: int = Field(default=5, ge=0, le=8)
    widen_backlog_bytes: int = Field(default=0, ge=0)
    sites: dict[str, SiteSection] = Field(default_factory=dict)

    _windows = field_validator("windows")(lambda cls, v: _check_windows(v))

    def to_policy(self, offline_after_s: float) -> PolicyConfig:
        try:
            return PolicyConfig(
                soft_limit_c=self.soft_limit_c,
                hard_limit_c=self.hard_limit_c,
                cool_margin_c=self.cool_margin_c,
                cool_hold_s=self.cool_hold_s,
                site_uplink_bps=self.site_uplink_bps,
                site_uplinks={k: s.uplink_bps for k, s in self.sites.items() if s.uplink_bps is not None},
                windows=tuple(self.windows),
                site_windows={k: tuple(s.windows) for k, s in self.sites.items() if s.windows is not None},
                max_concurrency=self.max_concurrency,
                ram_budget_fraction=self.ram_budget_fraction,
                default_compression_level=self.default_compression_level,
                widen_backlog_bytes=self.widen_backlog_bytes,
                offline_after_s=offline_after_s,
            )
        except ValueError as exc:
            raise ConfigError(f"[policy]: {exc}") from None


class ControllerConfig(_Section):
    controller_id: str = Field(default="ctl-1", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    database_url: str = DEFAULT_DATABASE_URL
    tick_seconds: float = Field(default=1.0, gt=0)
    offline_after_s: float = Field(default=60.0, gt=0)
    shared_group: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    flush_interval_s: float = Field(default=0.2, gt=0)
    telemetry_retention_days: float = Field(default=30.0, gt=0)
    mqtt: MqttSection
    s3: S3Section | None = None
    policy: PolicySection = Field(default_factory=PolicySection)

    def policy_config(self) -> PolicyConfig:
        return self.policy.to_policy(self.offline_after_s)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            target = data if section is None else data.setdefault(section, {})
            target[key] = env[var]
    return data


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "<file>"
        message = "unknown key (typo?)" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ControllerConfig:
    merged = _apply_env({k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}, env or {})
    try:
        config = ControllerConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid controller configuration:\n{_explain(exc)}") from None
    config.policy_config()  # cross-field checks (soft < hard)
    return config


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> ControllerConfig:
    """Read ``path`` (TOML; ``None`` = environment only) and apply environment overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, os.environ if env is None else env)
