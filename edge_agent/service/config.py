"""``agent.toml``: one validated settings object, environment variables override the file
(docs/agent.md, "Configuration").

Unknown keys are an error (a typo must not silently fall back to a default). Overrides:
``EDGEFLEET_AGENT_ID``, ``EDGEFLEET_MQTT_URL``, ``EDGEFLEET_S3_ENDPOINT|ACCESS_KEY|SECRET_KEY|BUCKET|REGION``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from edge_agent.engine.linkguard import STALL_TIMEOUT_S
from fleet_base.configfile import (
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
from fleet_protocol.errors import TopicError
from fleet_protocol.messages import MIN_PART_SIZE
from fleet_protocol.topics import validate_agent_id

MiB = 1024 * 1024

ENV_OVERRIDES = {"EDGEFLEET_AGENT_ID": (None, "agent_id"), **MQTT_ENV, **S3_ENV}


__all__ = ["AgentConfig", "ConfigError", "DefaultsSection", "load_config", "parse_config"]


class AgentS3Section(S3Section):
    prefix: str = ""


class DefaultsSection(Section):
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
        check_windows(value)
        return value


class AgentConfig(Section):
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
    stall_timeout_s: Annotated[float, Field(gt=0)] = STALL_TIMEOUT_S  # an S3 request moving no bytes this long
    spool_suffixes: tuple[str, ...] = (".wav",)
    mqtt: MqttSection
    s3: AgentS3Section
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


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str = "") -> AgentConfig:
    what = f"agent configuration {source}".strip()
    return parse_model(AgentConfig, data, os.environ if env is None else env, ENV_OVERRIDES, what)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> AgentConfig:
    return parse_config(read_toml(path), env, source=f"in {path}")
