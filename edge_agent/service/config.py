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
    parse_model,
    read_toml,
)
from fleet_plan.thermal import DEFAULT_LIMITS, check_limits
from fleet_protocol.assignment import (
    BANDWIDTH,
    COMPRESSION_LEVEL,
    CONCURRENCY,
    PART_SIZE,
    AssignmentSettings,
    MiB,
    check_windows,
)
from fleet_protocol.errors import TopicError
from fleet_protocol.topics import validate_agent_id

#: what an agent runs with when ``[defaults]`` leaves a key out: the assignment value's own defaults
_DEFAULTS = AssignmentSettings()

ENV_OVERRIDES = {"EDGEFLEET_AGENT_ID": (None, "agent_id"), **MQTT_ENV, **S3_ENV}


__all__ = ["AgentConfig", "ConfigError", "DefaultsSection", "LocalGuardSection", "load_config", "parse_config"]


class AgentS3Section(S3Section):
    prefix: str = ""


class DefaultsSection(Section):
    """What the agent does before its first assignment arrives (and if none was ever stored): the settings of an
    assignment under the same names, checked by the same rules (``fleet_protocol.assignment``), and at least one
    part in flight (``paused`` is the way to start paused)."""

    concurrency: Annotated[int, Field(ge=1)] = _DEFAULTS.concurrency
    part_size: int = _DEFAULTS.part_size
    compression_level: int = _DEFAULTS.compression_level
    windows: tuple[str, ...] = _DEFAULTS.windows
    bandwidth_bps: int = _DEFAULTS.bandwidth_bps
    paused: bool = _DEFAULTS.paused

    _concurrency = field_validator("concurrency")(lambda cls, v: CONCURRENCY.check(v))
    _part_size = field_validator("part_size")(lambda cls, v: PART_SIZE.check(v))
    _compression_level = field_validator("compression_level")(lambda cls, v: COMPRESSION_LEVEL.check(v))
    _bandwidth_bps = field_validator("bandwidth_bps")(lambda cls, v: BANDWIDTH.check(v))
    _windows = field_validator("windows")(lambda cls, v: check_windows(v))

    @property
    def settings(self) -> AssignmentSettings:
        return AssignmentSettings(**self.model_dump())


class LocalGuardSection(Section):
    """``[local_guard]``: with no controller contact (broker unreachable, or the controller offline) for
    ``after_s`` seconds, the agent applies the controller's thermal steps to its last assignment itself, from its
    own readings, with these limits (the controller's ``[policy]`` defaults); the controller's next word wins."""

    enabled: bool = True
    after_s: Annotated[float, Field(gt=0)] = 120.0
    soft_limit_c: float = DEFAULT_LIMITS.soft_limit_c
    hard_limit_c: float = DEFAULT_LIMITS.hard_limit_c
    cool_margin_c: Annotated[float, Field(ge=0)] = DEFAULT_LIMITS.cool_margin_c
    cool_hold_s: Annotated[float, Field(ge=0)] = DEFAULT_LIMITS.cool_hold_s

    @model_validator(mode="after")
    def _limits(self) -> LocalGuardSection:
        check_limits(self)
        return self


class AgentConfig(Section):
    agent_id: str
    site: str = ""
    spool_dir: Path
    state_dir: Path
    retention: Literal["delete", "move", "keep"] = "delete"
    done_dir: Path | None = None
    min_free_bytes: Annotated[int, Field(ge=0)] = 512 * MiB
    #: free space must be back at ``min_free_bytes`` + this before the next ``disk_low`` event can be sent
    min_free_hysteresis_bytes: Annotated[int, Field(ge=0)] = 64 * MiB
    settle_seconds: Annotated[float, Field(ge=0)] = 30.0
    telemetry_interval_s: Annotated[float, Field(gt=0)] = 10.0
    scan_interval_s: Annotated[float, Field(gt=0)] = 2.0
    stall_timeout_s: Annotated[float, Field(gt=0)] = STALL_TIMEOUT_S  # an S3 request moving no bytes this long
    spool_suffixes: tuple[str, ...] = (".wav",)
    mqtt: MqttSection
    s3: AgentS3Section
    defaults: DefaultsSection = DefaultsSection()
    local_guard: LocalGuardSection = LocalGuardSection()

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
