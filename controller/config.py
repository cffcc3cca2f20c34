"""``controller.toml``: one validated settings object; environment variables override the file
(docs/controller.md, "Configuration").

Unknown keys are an error with the key's path in the message. Overrides: ``EDGEFLEET_MQTT_URL``,
``EDGEFLEET_DATABASE_URL``, ``EDGEFLEET_S3_ENDPOINT|ACCESS_KEY|SECRET_KEY|BUCKET``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from controller.policy import PolicyConfig
from controller.store.engine import DEFAULT_DATABASE_URL
from edgefleet.configfile import (
    DATABASE_ENV,
    MQTT_ENV,
    S3_ENV,
    ConfigError,
    MqttSection,
    S3Section,
    Section,
    check_windows,
    parse_model,
    read_toml,
)

ENV_OVERRIDES = {**MQTT_ENV, **DATABASE_ENV, **S3_ENV}
__all__ = ["ConfigError", "ControllerConfig", "load_config", "parse_config"]


def _check_windows(windows: list[str]) -> list[str]:
    check_windows(windows)
    return windows


class ControllerS3Section(S3Section):
    stale_upload_hours: float = Field(default=24.0, gt=0)
    janitor_interval_s: float = Field(default=3600.0, gt=0)


class SiteSection(Section):
    uplink_bps: int | None = Field(default=None, ge=0)
    windows: list[str] | None = None

    _windows = field_validator("windows")(lambda cls, v: None if v is None else _check_windows(v))


class PolicySection(Section):
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


class ControllerConfig(Section):
    controller_id: str = Field(default="ctl-1", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    database_url: str = DEFAULT_DATABASE_URL
    tick_seconds: float = Field(default=1.0, gt=0)
    offline_after_s: float = Field(default=60.0, gt=0)
    shared_group: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    flush_interval_s: float = Field(default=0.2, gt=0)
    telemetry_retention_days: float = Field(default=30.0, gt=0)
    #: how long the broker keeps this controller's MQTT session (and queues its messages) while it is away
    session_expiry_s: int = Field(default=86_400, ge=0, le=0xFFFFFFFF)
    mqtt: MqttSection
    s3: ControllerS3Section | None = None
    policy: PolicySection = Field(default_factory=PolicySection)

    def policy_config(self) -> PolicyConfig:
        return self.policy.to_policy(self.offline_after_s)


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ControllerConfig:
    config = parse_model(ControllerConfig, data, env or {}, ENV_OVERRIDES, "controller configuration")
    config.policy_config()  # cross-field checks (soft < hard)
    return config


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> ControllerConfig:
    """Read ``path`` (TOML; ``None`` = environment only) and apply environment overrides."""
    data = read_toml(path) if path is not None else {}
    return parse_config(data, os.environ if env is None else env)
