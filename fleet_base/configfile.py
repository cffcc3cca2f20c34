"""TOML service configuration shared by agent, controller and dashboard (README "Configuration").

One rule set for every service: unknown keys are an error naming the key (a typo never falls back to a
default silently), environment variables override the file, and every error says where it is.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from fleet_base.mqtt_url import MqttUrl
from fleet_base.s3settings import S3Settings, S3SettingsError
from fleet_protocol.windows import is_valid_window

#: environment variable -> (section or None for the top level, key)
EnvOverrides = Mapping[str, tuple[str | None, str]]

MQTT_ENV: dict[str, tuple[str | None, str]] = {"EDGEFLEET_MQTT_URL": ("mqtt", "url")}
S3_ENV: dict[str, tuple[str | None, str]] = {
    "EDGEFLEET_S3_ENDPOINT": ("s3", "endpoint"),
    "EDGEFLEET_S3_ACCESS_KEY": ("s3", "access_key"),
    "EDGEFLEET_S3_SECRET_KEY": ("s3", "secret_key"),
    "EDGEFLEET_S3_BUCKET": ("s3", "bucket"),
    "EDGEFLEET_S3_REGION": ("s3", "region"),
    "EDGEFLEET_S3_CA_FILE": ("s3", "ca_file"),
}
DATABASE_ENV: dict[str, tuple[str | None, str]] = {"EDGEFLEET_DATABASE_URL": (None, "database_url")}

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """The configuration file or its overrides are unusable; the message says what and where."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_windows(windows: Iterable[str]) -> None:
    bad = [w for w in windows if not is_valid_window(w)]
    if bad:
        raise ValueError(f"invalid window(s) {bad}: use 'HH:MM-HH:MM'")


class MqttSection(Section):
    url: str

    @field_validator("url")
    @classmethod
    def _parse(cls, value: str) -> str:
        MqttUrl.parse(value)
        return value

    @property
    def parsed(self) -> MqttUrl:
        return MqttUrl.parse(self.url)


class S3Section(Section):
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    ca_file: str = ""  # the CA of an https endpoint with a private certificate

    @model_validator(mode="after")
    def _valid(self) -> S3Section:
        try:
            self.settings()
        except S3SettingsError as exc:
            raise ValueError(str(exc)) from None
        return self

    def settings(self) -> S3Settings:
        return S3Settings(self.endpoint, self.access_key, self.secret_key, self.bucket, self.region, self.ca_file)


def apply_env(data: Mapping[str, Any], env: Mapping[str, str], overrides: EnvOverrides) -> dict[str, Any]:
    """A copy of ``data`` with every set variable of ``overrides`` written into its place."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for var, (section, key) in overrides.items():
        value = env.get(var)
        if not value:
            continue
        if section is None:
            merged[key] = value
            continue
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}] must be a table, got {type(target).__name__}")
        target[key] = value
    return merged


def describe(exc: ValidationError) -> list[str]:
    """One line per problem, each naming its key path."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "<file>"
        message = "unknown key (typo?)" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{where}: {message}")
    return lines


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def parse_model(
    model: type[M], data: Mapping[str, Any], env: Mapping[str, str], overrides: EnvOverrides, what: str
) -> M:
    """Validate ``data`` with the environment applied; ``ConfigError`` lists every problem."""
    merged = apply_env(data, env, overrides)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}:\n  " + "\n  ".join(describe(exc))) from None
