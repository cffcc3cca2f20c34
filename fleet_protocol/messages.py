"""Every MQTT payload as a pydantic model: the one place a payload is defined (docs/protocol.md).

Receivers ignore unknown fields (``extra="ignore"``) so senders may add fields freely; the field names
are a contract other tools rely on and must not be renamed.

Every number and string is bounded (the table and its reasons are in docs/protocol.md): a message that
passes ``decode`` can be stored (PostgreSQL INTEGER/BIGINT, SQLite INTEGER, no NUL in text) and computed
with (finite floats, times inside 1970..2100) without an overflow anywhere downstream. Senders that
report measurements they do not control fit them into these bounds with ``fleet_protocol.bounds.fit``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet_protocol.assignment import (
    BANDWIDTH,
    COMPRESSION_LEVEL,
    CONCURRENCY,
    DEFAULT_COMPRESSION_LEVEL,
    MAX_COMPRESSION_LEVEL,
    MAX_WINDOWS,
    PART_SIZE,
    SETTINGS_FIELDS,
    AssignmentSettings,
    Range,
)
from fleet_protocol.numbers import (
    MAX_BYTES,
    MAX_CORES,
    MAX_COUNT,
    MAX_CPU_PERCENT,
    MAX_EXACT,
    MAX_INT32,
    MAX_LATENCY_S,
    MAX_RATE_BPS,
    MAX_RATIO,
    MAX_SECONDS,
    MAX_VERSION,
)
from fleet_protocol.topics import AGENT_ID_PATTERN, AgentChannel
from fleet_protocol.vocabulary import (
    EVENT_KIND_PATTERN,
    MAX_EVENT_KIND_CHARS,
    QUEUE_CHANGES,
    AgentStatus,
    EventKind,
    QueueAction,
    QueueState,
)
from fleet_protocol.windows import WINDOW_PATTERN

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 64 * 1024

# -- bounds (docs/protocol.md, "Bounds"; the numbers' own in fleet_protocol.numbers) ---------------------------
#: ``sent_at`` lies in [SENT_AT_MIN, SENT_AT_MAX): any clock reads after the Unix epoch, even a Pi's without RTC
SENT_AT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
SENT_AT_MAX = datetime(2100, 1, 1, tzinfo=UTC)
#: text may hold any Unicode but NUL (PostgreSQL text cannot store it); lone surrogates are not valid strings
TEXT_PATTERN = r"^[^\x00]*$"
MAX_REASON_CHARS = 2000
MAX_NAME_CHARS = 1024  # a file name or an object key
#: an object key's UTF-8 length: S3's own limit, and it keeps the event table's unique index on the key inside
#: PostgreSQL's btree row limit (2704 bytes)
MAX_KEY_BYTES = 1024


def _text(max_chars: int, description: str | None = None) -> Any:
    return Field(max_length=max_chars, pattern=TEXT_PATTERN, description=description)


def _within(bounds: Range) -> Any:
    """The range of an assignment setting, as the schema states it (the value checks it too)."""
    return Field(ge=bounds.low, le=bounds.high)


def _utf8_at_most(max_bytes: int) -> Any:
    """A UTF-8 length bound (JSON Schema has none: the snapshot says ``maxBytes``)."""

    def check(value: str) -> str:
        if len(value.encode()) > max_bytes:
            raise ValueError(f"at most {max_bytes} bytes of UTF-8")
        return value

    return AfterValidator(check)


Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Bytes = Annotated[int, Field(ge=0, le=MAX_BYTES)]
SmallCount = Annotated[int, Field(ge=0, le=MAX_INT32)]
Rate = Annotated[float, Field(ge=0, le=MAX_RATE_BPS)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
AgentId = Annotated[str, Field(pattern=f"^{AGENT_ID_PATTERN}$")]
Window = Annotated[str, Field(pattern=WINDOW_PATTERN)]
Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS, pattern=TEXT_PATTERN)]
#: a known ``EventKind``, else the kind a newer sender added, kept as a bounded string (docs/protocol.md,
#: "Compatibility"): tried in this order, so a known kind always decodes to its enum member
AnyEventKind = Annotated[
    EventKind | Annotated[str, Field(max_length=MAX_EVENT_KIND_CHARS, pattern=EVENT_KIND_PATTERN)],
    Field(union_mode="left_to_right"),
]
Ratio = Annotated[float, Field(ge=0, le=MAX_RATIO)]
#: one value per FLAC level, the list index is the level (0-8); 0 = not measured; empty = none measured
_BY_LEVEL = MAX_COMPRESSION_LEVEL + 1


def _by_level(description: str) -> Any:
    return Field(default_factory=list, max_length=_BY_LEVEL, description=description)


_ENCODE_BPS_BY_LEVEL = "FLAC encode speed per level (index 0-8), WAV bytes/s of one encoder; 0 = not measured"
_RATIO_BY_LEVEL = "FLAC stored ÷ WAV bytes per level (index 0-8) from real encodes; 0 = not measured"


def _version_required(schema: dict[str, Any]) -> None:
    """``decode`` refuses a payload without ``v``: the schema says so (a model fills it in when built)."""
    schema["required"] = ["v", *schema.get("required", [])]


#: shared by every model: finite floats only (no inf/NaN, also not as the JSON tokens ``Infinity``/``NaN``)
_CONFIG = ConfigDict(
    extra="ignore", frozen=True, strict=False, allow_inf_nan=False, json_schema_extra=_version_required
)
_SENT_AT = Field(
    default_factory=lambda: utc_now(),
    json_schema_extra={"formatMinimum": SENT_AT_MIN.isoformat(), "formatExclusiveMaximum": SENT_AT_MAX.isoformat()},
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_sent_at(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("sent_at must carry a time zone")
    if not SENT_AT_MIN <= value < SENT_AT_MAX:
        raise ValueError(f"sent_at must lie in [{SENT_AT_MIN.isoformat()}, {SENT_AT_MAX.isoformat()})")
    return value


class Message(BaseModel):
    """The envelope every payload carries."""

    model_config = _CONFIG
    channel: ClassVar[AgentChannel]

    v: Literal[1] = SCHEMA_VERSION
    agent_id: AgentId
    seq: Count = Field(description="monotonic per sender boot")
    sent_at: datetime = _SENT_AT

    _sent_at = field_validator("sent_at")(lambda cls, value: check_sent_at(value))


class Birth(Message):
    """Capabilities, retained: what the controller sizes an agent's assignment from."""

    channel: ClassVar[AgentChannel] = AgentChannel.BIRTH
    model: Annotated[str, _text(256, "hardware model, e.g. 'Raspberry Pi 4 Model B Rev 1.4'")]
    cores: Annotated[int, Field(ge=1, le=MAX_CORES)]
    ram_bytes: Annotated[int, Field(ge=1, le=MAX_BYTES)]
    disk_bytes: Bytes = 0
    software_version: Annotated[str, _text(128)]
    flac_encode_bps: Rate = Field(description="measured FLAC encode speed, WAV bytes per second")
    encode_bps_by_level: list[Rate] = _by_level(_ENCODE_BPS_BY_LEVEL)
    compression_ratio_by_level: list[Ratio] = _by_level(_RATIO_BY_LEVEL)
    encode_cores: Annotated[float, Field(ge=0, le=MAX_CORES)] = Field(
        default=0.0, description="encoders that run side by side at that speed (CPU quota, cores); 0 = unknown"
    )
    bucket: Annotated[str, _text(256)] = ""
    prefix: Annotated[str, _text(256)] = ""
    site: Annotated[str, _text(128)] = ""
    simulated: bool = False
    memory_limit_bytes: Bytes = Field(
        default=0, description="the agent's memory limit: its cgroup's, else the RAM; 0 = not reported"
    )
    baseline_rss_bytes: Bytes = Field(default=0, description="resident memory without part buffers; 0 = not reported")


class State(Message):
    """``online`` on connect, ``offline`` as the Last Will or on a clean shutdown; retained."""

    channel: ClassVar[AgentChannel] = AgentChannel.STATE
    state: AgentStatus


class Telemetry(Message):
    channel: ClassVar[AgentChannel] = AgentChannel.TELEMETRY
    temperature_c: float | None = Field(default=None, ge=-60, le=150)
    throttled: int = Field(default=0, ge=0, le=MAX_INT32, description="vcgencmd get_throttled bit mask")
    cpu_percent: Annotated[float, Field(ge=0, le=MAX_CPU_PERCENT)] = 0.0
    mem_available_bytes: Bytes = 0
    disk_free_bytes: Bytes = 0
    backlog_files: SmallCount = 0
    backlog_bytes: Bytes = 0
    backlog_oldest_age_s: Seconds = 0.0
    active_uploads: SmallCount = 0
    throughput_bps: Rate = Field(default=0.0, description="measured upload rate, bytes per second")
    encode_bps_by_level: list[Rate] = _by_level(_ENCODE_BPS_BY_LEVEL + " (refined from real encodes)")
    compression_ratio_by_level: list[Ratio] = _by_level(_RATIO_BY_LEVEL)
    bytes_uploaded_total: Bytes = 0
    retries_total: Count = 0
    errors_total: Count = 0
    assignment_version: Annotated[int, Field(ge=0, le=MAX_EXACT)] = 0
    backlog_eta_s: Seconds | None = Field(
        default=None, description="time to drain the backlog at the measured link rate; none = unknown"
    )
    # measured by the agent (docs/protocol.md): None = not measured (yet, or lately)
    mqtt_rtt_s: float | None = Field(
        default=None, ge=0, le=MAX_LATENCY_S, description="MQTT round trip to the broker (QoS 1 PUBLISH to PUBACK)"
    )
    s3_ttfb_s: float | None = Field(
        default=None, ge=0, le=MAX_LATENCY_S, description="S3 time to first byte of the answer to a small request"
    )
    process_cpu_percent: float | None = Field(default=None, ge=0, le=MAX_CPU_PERCENT, description="the agent's own")
    process_rss_bytes: int | None = Field(
        default=None, ge=0, le=MAX_BYTES, description="the agent process's resident memory, bytes"
    )


class Event(Message):
    channel: ClassVar[AgentChannel] = AgentChannel.EVENTS
    kind: AnyEventKind = Field(description="an EventKind; a kind this release does not know is kept as text")
    file: Annotated[str, _text(MAX_NAME_CHARS, "recording file name in the spool folder")]
    key: Annotated[
        str,
        Field(max_length=MAX_KEY_BYTES, pattern=TEXT_PATTERN, json_schema_extra={"maxBytes": MAX_KEY_BYTES}),
        _utf8_at_most(MAX_KEY_BYTES),
    ] = ""
    original_bytes: Bytes = 0
    stored_bytes: Bytes = 0
    original_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    stored_as: Literal["flac", "raw", ""] = ""
    #: how a file that is not FLAC is stored: "zstd" (compressed, docs/audio-format.md) or "" (unchanged). New in
    #: this release: ``stored_as`` is a closed enumeration, so a zstd object says "raw" there (not FLAC), this here
    stored_codec: Literal["zstd", ""] = ""
    duration_s: Seconds = 0.0
    retries: SmallCount = 0
    reason: Reason = ""


class Assignment(Message):
    """Controller → agent, retained. ``agent_id`` names the agent it is for; ``seq`` is the controller's."""

    # Besides the envelope, ``version`` and ``reason``, the fields are an ``AssignmentSettings`` under its own
    # names (the schema states their ranges from it): ``settings`` is that value, checked by its own validation
    # on every message built or decoded; ``Assignment.of`` builds the message from one.
    channel: ClassVar[AgentChannel] = AgentChannel.ASSIGNMENT
    version: Annotated[int, Field(ge=0, le=MAX_VERSION)] = Field(description="grows with every change")
    concurrency: Annotated[int, _within(CONCURRENCY)]
    part_size: Annotated[int, _within(PART_SIZE)]
    windows: list[Window] = Field(
        default_factory=list, max_length=MAX_WINDOWS, description="'HH:MM-HH:MM' local time; empty = always"
    )
    bandwidth_bps: Annotated[int, _within(BANDWIDTH)] = Field(default=0, description="bytes per second; 0 = no cap")
    compression_level: Annotated[int, _within(COMPRESSION_LEVEL)] = Field(
        default=DEFAULT_COMPRESSION_LEVEL, description="FLAC level 0-8; -1 = upload raw"
    )
    paused: bool = False
    upload_now: bool = Field(default=False, description="operator: ignore windows until the backlog is empty")
    reason: Reason = ""

    @model_validator(mode="after")
    def _valid_settings(self) -> Assignment:
        _ = self.settings  # the value's own validation: its ValueError refuses the message
        return self

    @property
    def settings(self) -> AssignmentSettings:
        return AssignmentSettings(**{name: getattr(self, name) for name in SETTINGS_FIELDS})

    @classmethod
    def of(cls, settings: AssignmentSettings, *, agent_id: str, seq: int, version: int, reason: str = "") -> Assignment:
        """The message carrying ``settings`` (wire field names are the value's)."""
        return cls(agent_id=agent_id, seq=seq, version=version, reason=reason, **settings.as_dict())


class ControllerState(BaseModel):
    """``edgefleet/v1/controller/state``: the controller's own online/offline (Last Will)."""

    model_config = _CONFIG
    v: Literal[1] = SCHEMA_VERSION
    controller_id: Annotated[str, _text(64)]
    seq: Count = 0
    sent_at: datetime = _SENT_AT
    state: AgentStatus

    _sent_at = field_validator("sent_at")(lambda cls, value: check_sent_at(value))


# -- queue control: request/response over MQTT v5 (docs/protocol.md, "Queue control") ---------------------------
#: a reply lists at most this many entries (the first ones, in the order the agent takes them) and their total
MAX_QUEUE_ENTRIES = 200
#: a queue entry's last error is cut to this many characters (the full text is in the agent's log)
MAX_QUEUE_ERROR_CHARS = 300
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class QueueRequest(BaseModel):
    """Requester (the dashboard) → one agent, on ``edgefleet/v1/agents/<id>/queue/request``, with the MQTT v5
    Response Topic and Correlation Data set: the agent answers there with a :class:`QueueReply`."""

    model_config = _CONFIG
    v: Literal[1] = SCHEMA_VERSION
    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="the requester's id of this request")
    action: QueueAction
    file: Annotated[str, _text(MAX_NAME_CHARS, "the file, by the name the agent reports (empty for list)")] = ""
    requested_by: Annotated[str, _text(128, "who asked (for the agent's log)")] = ""
    sent_at: datetime = _SENT_AT

    _sent_at = field_validator("sent_at")(lambda cls, value: check_sent_at(value))

    @model_validator(mode="after")
    def _file_for_changes(self) -> QueueRequest:
        if self.action in QUEUE_CHANGES and not self.file:
            raise ValueError(f"{self.action.value} needs a file")
        return self


class QueueItem(BaseModel):
    """One queued file as a queue reply lists it."""

    model_config = _CONFIG
    file: Annotated[str, _text(MAX_NAME_CHARS, "file name in the spool folder")]
    size: Bytes = 0
    state: QueueState = QueueState.QUEUED
    retries: SmallCount = Field(default=0, description="failed attempts so far")
    last_error: Annotated[str, _text(MAX_QUEUE_ERROR_CHARS, "why the last attempt failed")] = ""
    retry_in_s: Seconds | None = Field(default=None, description="waiting: seconds until it may be taken again")
    first: bool = Field(default=False, description="moved to the front by an operator")


class QueueReply(BaseModel):
    """Agent → requester, on the request's Response Topic with its Correlation Data: the action's outcome and
    the queue after it (at most ``MAX_QUEUE_ENTRIES`` entries, fewer if the payload would be too big)."""

    model_config = _CONFIG
    v: Literal[1] = SCHEMA_VERSION
    agent_id: AgentId
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    action: QueueAction
    ok: bool
    error: Reason = ""
    entries: list[QueueItem] = Field(default_factory=list, max_length=MAX_QUEUE_ENTRIES)
    total: SmallCount = Field(default=0, description="files in the queue, listed or not")
    sent_at: datetime = _SENT_AT

    _sent_at = field_validator("sent_at")(lambda cls, value: check_sent_at(value))


AGENT_MESSAGES: dict[AgentChannel, type[Message]] = {
    cls.channel: cls for cls in (Birth, State, Telemetry, Event, Assignment)
}
