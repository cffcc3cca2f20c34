"""Every MQTT payload of DESIGN §2 as a pydantic model: the one place a payload is defined.

Receivers ignore unknown fields (``extra="ignore"``) so senders may add fields freely; the field
names listed in DESIGN §2 are a contract other tools rely on and must not be renamed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleet_protocol.topics import AGENT_ID_PATTERN, AgentChannel
from fleet_protocol.vocabulary import AgentStatus as AgentStatus  # re-exported
from fleet_protocol.vocabulary import EventKind as EventKind  # re-exported

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 64 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
WINDOW_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
_WINDOW_RE = re.compile(WINDOW_PATTERN)

NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
AgentId = Annotated[str, Field(pattern=f"^{AGENT_ID_PATTERN}$")]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """The envelope every payload carries."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)
    channel: ClassVar[AgentChannel]

    v: Literal[1] = SCHEMA_VERSION
    agent_id: AgentId
    seq: NonNegInt = Field(description="monotonic per sender boot")
    sent_at: datetime = Field(default_factory=utc_now)

    @field_validator("sent_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("sent_at must carry a time zone")
        return value


class Birth(Message):
    """Capabilities, retained: what the controller sizes an agent's assignment from."""

    channel: ClassVar[AgentChannel] = AgentChannel.BIRTH
    model: str = Field(description="hardware model, e.g. 'Raspberry Pi 4 Model B Rev 1.4'")
    cores: Annotated[int, Field(ge=1)]
    ram_bytes: Annotated[int, Field(ge=1)]
    disk_bytes: NonNegInt = 0
    software_version: str
    flac_encode_bps: NonNegFloat = Field(description="measured FLAC encode speed, WAV bytes per second")
    bucket: str = ""
    prefix: str = ""
    site: str = ""
    simulated: bool = False


class State(Message):
    """``online`` on connect, ``offline`` as the Last Will or on a clean shutdown; retained."""

    channel: ClassVar[AgentChannel] = AgentChannel.STATE
    state: AgentStatus


class Telemetry(Message):
    channel: ClassVar[AgentChannel] = AgentChannel.TELEMETRY
    temperature_c: float | None = Field(default=None, ge=-60, le=150)
    throttled: NonNegInt = Field(default=0, description="vcgencmd get_throttled bit mask")
    cpu_percent: Annotated[float, Field(ge=0, le=100 * 1024)] = 0.0
    mem_available_bytes: NonNegInt = 0
    disk_free_bytes: NonNegInt = 0
    backlog_files: NonNegInt = 0
    backlog_bytes: NonNegInt = 0
    backlog_oldest_age_s: NonNegFloat = 0.0
    active_uploads: NonNegInt = 0
    throughput_bps: NonNegFloat = Field(default=0.0, description="measured upload rate, bytes per second")
    bytes_uploaded_total: NonNegInt = 0
    retries_total: NonNegInt = 0
    errors_total: NonNegInt = 0
    assignment_version: NonNegInt = 0


class Event(Message):
    channel: ClassVar[AgentChannel] = AgentChannel.EVENTS
    kind: EventKind
    file: str = Field(description="recording file name in the spool folder")
    key: str = ""
    original_bytes: NonNegInt = 0
    stored_bytes: NonNegInt = 0
    original_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    stored_as: Literal["flac", "raw", ""] = ""
    duration_s: NonNegFloat = 0.0
    retries: NonNegInt = 0
    reason: str = ""


class Assignment(Message):
    """Controller → agent, retained. ``agent_id`` names the agent it is for; ``seq`` is the controller's."""

    channel: ClassVar[AgentChannel] = AgentChannel.ASSIGNMENT
    version: NonNegInt = Field(description="grows with every change")
    concurrency: Annotated[int, Field(ge=0, le=64)]
    part_size: Annotated[int, Field(ge=MIN_PART_SIZE, le=MAX_PART_SIZE)]
    windows: list[Annotated[str, Field(pattern=WINDOW_PATTERN)]] = Field(
        default_factory=list, description="'HH:MM-HH:MM' local time; empty = always"
    )
    bandwidth_bps: NonNegInt = Field(default=0, description="bytes per second; 0 = no cap")
    compression_level: Annotated[int, Field(ge=-1, le=8)] = Field(
        default=5, description="FLAC level 0-8; -1 = upload raw"
    )
    paused: bool = False
    upload_now: bool = Field(default=False, description="operator: ignore windows until the backlog is empty")
    reason: str = ""


class ControllerState(BaseModel):
    """``edgefleet/v1/controller/state``: the controller's own online/offline (Last Will)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    v: Literal[1] = SCHEMA_VERSION
    controller_id: str
    seq: NonNegInt = 0
    sent_at: datetime = Field(default_factory=utc_now)
    state: AgentStatus


AGENT_MESSAGES: dict[AgentChannel, type[Message]] = {
    cls.channel: cls for cls in (Birth, State, Telemetry, Event, Assignment)
}


def is_valid_window(window: str) -> bool:
    return bool(_WINDOW_RE.match(window))
