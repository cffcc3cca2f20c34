"""``dashboard.toml``: one validated settings object (see /work/team/CONFIG.md).

Unknown keys are an error that names the key, so a typo never passes silently. The environment
variable ``EDGEFLEET_DATABASE_URL`` overrides ``database_url``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DATABASE_URL_ENV = "EDGEFLEET_DATABASE_URL"


class ConfigError(ValueError):
    """The configuration file is missing, not TOML, or does not validate."""


class Role(StrEnum):
    OPERATOR = "operator"
    VIEWER = "viewer"


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    password_hash: str
    role: Role = Role.VIEWER

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, value: str) -> str:
        if not value.startswith(("$2a$", "$2b$", "$2y$")) or len(value) != 60:
            raise ValueError("password_hash must be a bcrypt hash (`edgefleet dashboard --hash-password`)")
        return value


class DashboardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    secret_key: Annotated[str, Field(min_length=16)]
    users: list[UserConfig] = Field(default_factory=list)
    # Additions to CONFIG.md (all optional):
    session_max_age_s: Annotated[int, Field(ge=60)] = 12 * 3600
    secure_cookies: bool = False  # set true behind HTTPS
    live_interval_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    snapshot_max_age_s: Annotated[float, Field(ge=0, le=60)] = 1.0  # pages reuse a fleet read this young
    page_size: Annotated[int, Field(ge=10, le=10_000)] = 200  # fleet table rows per page
    metrics_cache_s: Annotated[float, Field(ge=0)] = 5.0  # /metrics is formatted at most this often
    offline_after_s: Annotated[float, Field(gt=0)] = 60.0
    soft_limit_c: float = 70.0
    hard_limit_c: float = 80.0

    @model_validator(mode="after")
    def _unique_users(self) -> DashboardConfig:
        names = [u.name for u in self.users]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate user name(s): {', '.join(duplicated)}")
        return self

    def user(self, name: str) -> UserConfig | None:
        return next((u for u in self.users if u.name == name), None)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = "unknown key (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_config(
    data: Mapping[str, object], env: Mapping[str, str] | None = None, source: str = "config"
) -> DashboardConfig:
    merged = dict(data)
    if env and env.get(DATABASE_URL_ENV):
        merged["database_url"] = env[DATABASE_URL_ENV]
    try:
        return DashboardConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid dashboard configuration:\n{_describe(exc)}") from exc


def load_config(path: Path, env: Mapping[str, str] | None = None) -> DashboardConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, env, source=str(path))
