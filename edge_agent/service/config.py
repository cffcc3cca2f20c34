"""``agent.toml`` (team CONFIG.md): one validated settings object, environment variables override the file.

Unknown keys are an error (a typo must not silently fall back to a default). Overrides:
``EDGEFLEET_AGENT_ID``, ``EDGEFLEET_MQTT_URL``, ``EDGEFLEET_S3_ENDPOINT|ACCESS_KEY|SECRET_KEY|BUCKET|REGION``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.s3settings import S3Settings, S3SettingsError
from fleet_protocol import MIN_PART_SIZE, is_valid_window, validate_agent_id
from fleet_protocol.errors import TopicError
from fleet_protocol.mqtt_url import MqttUrl

MiB = 1024 * 1024

#: environment variable -> (section or None, key)
ENV_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "EDGEFLEET_AGENT_ID": (None, "agent_id"),
    "EDGEFLEET_MQTT_URL": ("mqtt", "url"),
    "EDGEFLEET_S3_ENDPOINT": ("s3", "endpoint"),
    "EDGEFLEET_S3_ACCESS_KEY": ("s3", "access_key"),
    "EDGEFLEET_S3_SECRET_KEY": ("s3", "secret_key"),
    "EDGEFLEET_S3_BUCKET": ("s3", "bucket"),
    "EDGEFLEET_S3_REGION": ("s3", "region"),
}


class ConfigError(ValueError):
    """The configuration file or its overrides are unusable; the message says what and where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    prefix: str = ""
    region: str = "us-east-1"

    @model_validator(mode="after")
    def _valid(self) -> S3Section:
        try:
            self.settings()
        except S3SettingsError as exc:
            raise ValueError(str(exc)) from None
        return self

    def settings(self) -> S3Settings:
        return S3Settings(self.endpoint, self.access_key, self.secret_key, self.bucket, self.region)


class DefaultsSection(_Section):
    """What the agent does before its first assignment arrives (and if none was ever stored)."""

    concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    part_size: Annotated[int, Field(ge=MIN_PART_SIZE)] = 8 * MiB
    compression_level: Annotated[int, Field(ge=-1, le=8)] = 5
    windows: tuple[str, ...] = ()
    bandwidth_bps: Annotated[int, Field(ge=0)] = 0
    paused: bool = False

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [w for w in value if not is_valid_window(w)]
        if bad:
            raise ValueError(f"windows must be 'HH:MM-HH:MM', got {bad}")
        return value


class AgentConfig(_Section):
    agent_id: str
    site: str = ""
    spool_dir: Path
    state_dir: Path
    retention: Literal["delete", "move", "keep"] = "delete"
    done_dir: Path | None = None
    min_free_bytes: Annotated[int, Field(ge=0)] = 512 * MiB
    settle_seconds: Annotated[float, Field(ge=0)] = 30.0
    telemetry_interval_s: Annotated[float, Field(gt=0)] = 10.0
    scan_interval_s: Annotated[float, Field(gt=0)] = 2.0
    spool_suffixes: tuple[str, ...] = (".wav",)
    mqtt: MqttSection
    s3: S3Section
    defaults: DefaultsSection = DefaultsSection()

    @field_validator("agent_id")
    @classmethod
    def _agent_id(cls, value: str) -> str:
        try:
            return validate_agent_id(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _retention(self) -> AgentConfig:
        if self.retention == "move" and self.done_dir is None:
            raise ValueError("retention = 'move' needs done_dir")
        return self


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        if section is None:
            merged[key] = value
        else:
            target = merged.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"[{section}] must be a table, got {type(target).__name__}")
            target[key] = value
    return merged


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "<root>"
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r} (typo?)")
        else:
            lines.append(f"{where}: {error['msg']}")
    return f"invalid agent configuration {source}: " + "; ".join(lines)


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str = "") -> AgentConfig:
    merged = _apply_env(dict(data), os.environ if env is None else env)
    try:
        return AgentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> AgentConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, env, source=f"in {path}")
