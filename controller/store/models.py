"""The controller's tables (SQLModel), shared with the dashboard, which reads them and writes overrides.

Layering as in full-stack-fastapi-template: a ``...Base`` class holds the columns that mean something
to a reader, the ``table=True`` class adds keys and bookkeeping. Every timestamp is UTC; SQLite hands
them back without a zone, so read them through ``controller.store.repo.as_utc``.

Tables
    agent                 one row per agent: capabilities (birth), online/offline, latest telemetry
    telemetry_sample      telemetry history (time series), one row per received telemetry message
    upload_event          upload started/completed/failed/resumed and rejected files
    current_assignment    the assignment in force per agent, plus the policy's hysteresis state
    assignment_history    every assignment ever published; unique (agent_id, version) guards versions
    operator_override     pause / windows / caps / upload-now / data budgets for an agent or a whole site
    audit_entry           who changed what, when
    ingest_reject         counters of invalid messages, by channel and error kind
    dead_letter           the last messages that were valid but could not be stored (capped), for diagnosis
    controller_instance   heartbeats of running controllers (scale-out: who ticks which sites)
    alert                 every alert instance: labels, annotations, when it started and resolved
    alert_notification    the webhook outbox: one row per notification and webhook, until delivered
    central_sample        the central node over time: host, broker ($SYS) and S3 probe (controller.central)
    recording             the recordings catalog: one row per stored object, fed by completed uploads
    transcode_job         the central transcoder's queue: one row per raw object, with its lease
    transcoder_worker     heartbeats of running transcoder workers (the policy counts them as capacity)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

TZ = DateTime(timezone=True)
#: 64-bit keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

OVERRIDE_SCOPES = ("agent", "site")

#: Names for every index and constraint, so that a migration can drop or alter one by name on both databases.
#: They reproduce the names the tables had before migrations existed (``ix_<table>_<column>`` is SQLAlchemy's
#: default, ``<table>_pkey`` PostgreSQL's), so a database made by create_all matches a migrated one.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "%(table_name)s_pkey",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION  # before the tables below are defined


def _json_list() -> Any:
    return Field(default_factory=list, sa_type=JSON, nullable=False)


# --- agents -----------------------------------------------------------------------------------


class AgentCapabilities(SQLModel):
    """What an agent's birth message tells: copied by name from the ``fleet_protocol.Birth`` fields of the same
    names (``controller.store.tables.copied_fields`` checks that they are)."""

    model: str = Field(default="", max_length=256)
    cores: int = 1
    ram_bytes: int = Field(default=0, sa_type=BigInteger)
    disk_bytes: int = Field(default=0, sa_type=BigInteger)
    software_version: str = Field(default="", max_length=128)
    flac_encode_bps: float = 0.0
    encode_cores: float = 0.0
    bucket: str = Field(default="", max_length=256)
    prefix: str = Field(default="", max_length=256)
    simulated: bool = False
    memory_limit_bytes: int = Field(default=0, sa_type=BigInteger, description="0 = not reported (older agent)")
    baseline_rss_bytes: int = Field(default=0, sa_type=BigInteger, description="0 = not reported (older agent)")


class AgentBase(AgentCapabilities):
    """Capabilities (from the retained birth message) and liveness. ``site`` is provisioned (the controller's
    ``[agent_sites]``), never taken from the agent; what the agent says is kept as ``reported_site``."""

    site: str = Field(default="", index=True, max_length=128)
    reported_site: str = Field(default="", max_length=128, description="the site the agent's birth names")
    online: bool = False
    online_since: datetime | None = Field(default=None, sa_type=TZ)
    offline_since: datetime | None = Field(default=None, sa_type=TZ)
    last_seen: datetime | None = Field(default=None, sa_type=TZ)


class TelemetryReading(SQLModel):
    """The values of a telemetry message that its history keeps: copied by name from the
    ``fleet_protocol.Telemetry`` fields of the same names (docs/design.md §2 names)."""

    temperature_c: float | None = None
    throttled: int = 0
    cpu_percent: float = 0.0
    backlog_files: int = 0
    backlog_bytes: int = Field(default=0, sa_type=BigInteger)
    throughput_bps: float = 0.0
    active_uploads: int = 0
    assignment_version: int = Field(default=0, sa_type=BigInteger, description="version the agent applies")
    # the agent's own measurements; None: not measured (an older agent, or nothing to measure lately)
    mqtt_rtt_s: float | None = None
    s3_ttfb_s: float | None = None
    process_cpu_percent: float | None = None
    process_rss_bytes: int | None = Field(default=None, sa_type=BigInteger)


class EncodeMeasures(SQLModel):
    """The agent's FLAC encode speed and stored ÷ WAV ratio per level (list index = level, 0 = not measured):
    copied by name from its birth (the start-up probe), then from each telemetry (refined by real encodes)."""

    encode_bps_by_level: list[float] = _json_list()
    compression_ratio_by_level: list[float] = _json_list()


class AgentTelemetryBase(TelemetryReading, EncodeMeasures):
    """Latest telemetry: every value of the message, copied by name; ``None``/0 until the first telemetry message."""

    mem_available_bytes: int = Field(default=0, sa_type=BigInteger)
    disk_free_bytes: int = Field(default=0, sa_type=BigInteger)
    backlog_oldest_age_s: float = 0.0
    bytes_uploaded_total: int = Field(default=0, sa_type=BigInteger)
    retries_total: int = Field(default=0, sa_type=BigInteger)
    errors_total: int = Field(default=0, sa_type=BigInteger)
    backlog_eta_s: float | None = Field(default=None, description="time to drain the backlog; None = unknown")


class Agent(AgentTelemetryBase, AgentBase, table=True):
    __tablename__ = "agent"

    id: str = Field(primary_key=True, max_length=64)
    capabilities: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    birth_at: datetime | None = Field(default=None, sa_type=TZ)
    telemetry_at: datetime | None = Field(default=None, sa_type=TZ, description="sent_at of the latest telemetry")
    telemetry_seq: int = Field(default=0, sa_type=BigInteger)


# --- telemetry history ----------------------------------------------------------------------------


class TelemetrySampleBase(TelemetryReading):
    agent_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=TZ, description="sent_at of the message")
    received_at: datetime = Field(sa_type=TZ)
    concurrency: int | None = Field(default=None, description="concurrency of the assignment in force")


class TelemetrySample(TelemetrySampleBase, table=True):
    __tablename__ = "telemetry_sample"
    __table_args__ = (Index("ix_telemetry_agent_at", "agent_id", "at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)


# --- upload events ------------------------------------------------------------------------------


class UploadEventBase(SQLModel):
    agent_id: str = Field(max_length=64)
    kind: str = Field(max_length=32, description="fleet_protocol.EventKind value")
    file: str = Field(default="", max_length=1024)
    key: str = Field(default="", max_length=1024)
    original_bytes: int = Field(default=0, sa_type=BigInteger)
    stored_bytes: int = Field(default=0, sa_type=BigInteger)
    sha256: str = Field(default="", max_length=64)
    stored_as: str = Field(default="", max_length=8)
    duration_s: float = 0.0
    retries: int = 0
    reason: str = ""
    at: datetime = Field(sa_type=TZ, description="sent_at of the event")


_COMPLETED = text("kind = 'upload_completed'")

#: Idempotent ingest (QoS 1 is at-least-once; a restarted agent reports a stored file again): one row per
#: message (an agent's ``seq`` restarts at 0 with the process, ``sent_at`` tells the runs apart), and one
#: ``upload_completed`` per agent, object key and original sha256. Inserts skip what is already there.
EVENT_DEDUP = (
    Index("uq_upload_event_message", "agent_id", "at", "seq", "kind", unique=True),
    Index(
        "uq_upload_event_completed",
        "agent_id",
        "key",
        "sha256",
        unique=True,
        sqlite_where=_COMPLETED,
        postgresql_where=_COMPLETED,
    ),
)


class UploadEvent(UploadEventBase, table=True):
    __tablename__ = "upload_event"
    __table_args__ = (
        Index("ix_upload_event_agent_at", "agent_id", "at"),
        Index("ix_upload_event_at", "at"),
        *EVENT_DEDUP,
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    seq: int = Field(default=0, sa_type=BigInteger)


# --- assignments --------------------------------------------------------------------------------


class AssignmentBase(SQLModel):
    """All fields of ``fleet_protocol.Assignment`` plus when and by which controller."""

    agent_id: str = Field(max_length=64)
    version: int = Field(sa_type=BigInteger)
    concurrency: int
    part_size: int = Field(sa_type=BigInteger)
    windows: list[str] = _json_list()
    bandwidth_bps: int = Field(default=0, sa_type=BigInteger)
    compression_level: int = 5
    paused: bool = False
    upload_now: bool = False
    reason: str = ""
    at: datetime = Field(sa_type=TZ)
    controller_id: str = Field(default="", max_length=128)


class CurrentAssignment(AssignmentBase, table=True):
    """The assignment in force (one per agent) and the policy state it was decided with."""

    __tablename__ = "current_assignment"

    agent_id: str = Field(primary_key=True, max_length=64)
    thermal_level: int = Field(default=0, description="0 normal … 4 paused; see controller.policy.thermal")
    cool_since: datetime | None = Field(default=None, sa_type=TZ, description="cool enough to step down since")
    window_widened: bool = False


class AssignmentHistory(AssignmentBase, table=True):
    __tablename__ = "assignment_history"
    __table_args__ = (UniqueConstraint("agent_id", "version", name="uq_assignment_agent_version"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)


# --- operators ----------------------------------------------------------------------------------


class OverrideBase(SQLModel):
    """What an operator set; ``None`` means "not overridden"."""

    paused: bool | None = None
    windows: list[str] | None = Field(default=None, sa_type=JSON, nullable=True)
    concurrency_cap: int | None = None
    bandwidth_cap_bps: int | None = Field(default=None, sa_type=BigInteger)
    upload_now: bool = False
    note: str = ""
    #: metered links (a site's override): the monthly data budget in bytes, 0 = none; beats ``[policy.sites]``
    monthly_budget_bytes: int | None = Field(default=None, sa_type=BigInteger)
    #: metered links: the daily cap in bytes of the agent (agent override) or of each agent of the site, 0 = none
    daily_cap_bytes: int | None = Field(default=None, sa_type=BigInteger)


class OperatorOverride(OverrideBase, table=True):
    __tablename__ = "operator_override"
    __table_args__ = (UniqueConstraint("scope", "target", name="uq_override_scope_target"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=8, description="'agent' or 'site'")
    target: str = Field(max_length=128, description="agent id or site name")
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=TZ)
    updated_by: str = Field(max_length=128)
    updated_at: datetime = Field(sa_type=TZ)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    at: datetime = Field(sa_type=TZ, index=True)
    who: str = Field(max_length=128)
    action: str = Field(max_length=64, description="e.g. override.set, override.clear")
    target: str = Field(max_length=200, description="'agent:<id>' or 'site:<name>'")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- ingest health ------------------------------------------------------------------------------


class IngestReject(SQLModel, table=True):
    """Invalid messages, counted per ``kind`` (``<channel>:<error class>``, e.g. ``telemetry:PayloadError``)."""

    __tablename__ = "ingest_reject"

    kind: str = Field(primary_key=True, max_length=96)
    count: int = Field(default=0, sa_type=BigInteger)
    last_error: str = ""
    last_topic: str = Field(default="", max_length=512)
    last_at: datetime | None = Field(default=None, sa_type=TZ)


class DeadLetter(SQLModel, table=True):
    """A valid message the store could not take (its data made the write fail): kept for diagnosis,
    acknowledged to the broker so it is never delivered again. Only the newest ``DEAD_LETTERS_KEPT`` stay."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    at: datetime = Field(sa_type=TZ, description="when it was received")
    topic: str = Field(default="", max_length=512)
    payload: bytes = Field(default=b"", sa_type=LargeBinary, description="the first 64 KiB")
    reason: str = Field(default="", max_length=96, description="as counted in ingest_reject")
    error: str = Field(default="", description="the exception, shortened")
    controller_id: str = Field(default="", max_length=64)


DEAD_LETTERS_KEPT = 1000


# --- scale-out ----------------------------------------------------------------------------------


class ControllerInstance(SQLModel, table=True):
    """Heartbeats of running controllers: live ones split the full ticks by site between them."""

    __tablename__ = "controller_instance"

    id: str = Field(primary_key=True, max_length=64)
    started_at: datetime = Field(sa_type=TZ)
    last_seen: datetime = Field(sa_type=TZ)
    #: every message this controller received before this time is stored (its ingest's watermark; None: an
    #: older controller that does not say)
    stored_through: datetime | None = Field(default=None, sa_type=TZ, nullable=True)


# --- alerts ---------------------------------------------------------------------------------------

_ACTIVE = text("resolved_at IS NULL")


class AlertRecord(SQLModel, table=True):
    """An alert instance (``controller.alerting``): open while ``resolved_at`` is NULL. At most one open row per
    ``fingerprint`` (its labels); a condition that comes back after resolving opens a new row."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("uq_alert_active", "fingerprint", unique=True, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE),
        Index("ix_alert_resolved_at", "resolved_at"),
        Index("ix_alert_agent_id", "agent_id"),  # the agent page's alerts
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    fingerprint: str = Field(max_length=16, description="controller.alerting.rules.fingerprint of the labels")
    kind: str = Field(max_length=32, description="controller.alerting.rules.Kind value")
    alertname: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    scope: str = Field(max_length=64, description="'fleet' or the controller id whose own state this is")
    agent_id: str = Field(default="", max_length=64)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(sa_type=TZ)
    resolved_at: datetime | None = Field(default=None, sa_type=TZ)
    #: when the latest firing notification was queued (the repeat interval counts from it)
    notified_at: datetime | None = Field(default=None, sa_type=TZ)


class OutboxState(SQLModel):
    """The delivery state of an outbox row (``controller.webhooks``): the message, when it was queued, when it is
    next due, and what the attempts did. (No ``sa_column`` here: a Column object cannot be shared by tables.)"""

    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    created_at: datetime = Field(sa_type=TZ)
    next_attempt_at: datetime = Field(sa_type=TZ)
    attempts: int = 0
    delivered_at: datetime | None = Field(default=None, sa_type=TZ)
    given_up: bool = False
    last_error: str = Field(default="", max_length=500)


class AlertNotification(OutboxState, table=True):
    """The webhook outbox: a notification waits here until delivered (or given up), so a restart loses none."""

    __tablename__ = "alert_notification"
    __table_args__ = (Index("ix_alert_notification_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    alert_id: int = Field(sa_type=BigInteger)
    scope: str = Field(max_length=64, description="the alert's scope: who delivers it")
    webhook: str = Field(max_length=1024, description="the receiver's URL, as configured")
    status: str = Field(max_length=16, description="'firing' or 'resolved'")


# --- the recordings catalog --------------------------------------------------------------------


class RecordingBase(SQLModel):
    """What an operator searches by and sees of a stored recording. Audio facts are ``None`` until the catalog
    has read the object (``status`` 'cataloged'), or when the object does not say (a raw non-WAV file)."""

    key: str = Field(max_length=1024, description="object key in the bucket")
    agent_id: str = Field(max_length=64)
    site: str = Field(default="", max_length=64)
    file: str = Field(default="", max_length=1024, description="the file name on the Pi")
    uploaded_at: datetime = Field(sa_type=TZ, description="when the agent reported the upload complete")
    recorded_at: datetime | None = Field(default=None, sa_type=TZ)
    #: where ``recorded_at`` came from: 'bext', 'guano', 'ixml', 'filename', 'mtime' or '' (not known)
    recorded_at_source: str = Field(default="", max_length=16)
    #: the agent's clock was off when it reported (``sent_at`` against the controller's receive time)
    clock_suspect: bool = False
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bits_per_sample: int | None = None
    original_bytes: int = Field(default=0, sa_type=BigInteger)
    stored_bytes: int = Field(default=0, sa_type=BigInteger)
    sha256: str = Field(default="", max_length=64, description="of the original file")
    codec: str = Field(default="", max_length=16, description="how the object stores it: 'flac', 'raw', ...")
    #: the recorder's own metadata (bext, GUANO, iXML fields), bounded
    recorder_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Recording(RecordingBase, table=True):
    """The catalog row of one object key; ``upload_event_id`` is the ``upload_completed`` event that made it."""

    __tablename__ = "recording"
    __table_args__ = (
        Index("uq_recording_key", "key", unique=True),
        Index("uq_recording_upload_event", "upload_event_id", unique=True),
        Index("ix_recording_agent_recorded", "agent_id", "recorded_at"),
        Index("ix_recording_site_recorded", "site", "recorded_at"),
        Index("ix_recording_status", "status"),
        # the recordings page's keyset sorts: each sort column with the id that breaks its ties
        Index("ix_recording_recorded_id", "recorded_at", "id"),
        Index("ix_recording_uploaded_id", "uploaded_at", "id"),
        Index("ix_recording_duration_id", "duration_s", "id"),
        Index("ix_recording_size_id", "original_bytes", "id"),
        Index("ix_recording_agent_sort", "agent_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    upload_event_id: int | None = Field(default=None, sa_type=BigInteger)
    #: 'pending' (from the event, not read yet), 'cataloged' (the object was read) or 'failed' (see ``error``)
    status: str = Field(default="pending", max_length=16)
    error: str = Field(default="", max_length=500)
    cataloged_at: datetime | None = Field(default=None, sa_type=TZ)


class RecordingDelivery(OutboxState, table=True):
    """The recording events' outbox (``controller.recordings.events``): one row per cataloged recording and
    receiver (a webhook URL, or ``mqtt:`` + topic), created once (unique: two controllers cannot both create it),
    until delivered or given up."""

    __tablename__ = "recording_delivery"
    __table_args__ = (
        Index("uq_recording_delivery", "recording_id", "target", unique=True),
        Index("ix_recording_delivery_due", "delivered_at", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    recording_id: int = Field(sa_type=BigInteger)
    target: str = Field(max_length=1024, description="the webhook URL as configured, or 'mqtt:<topic>'")
    event_id: str = Field(max_length=64, description="the event's id: receivers de-duplicate on it")


# --- the central node ---------------------------------------------------------------------------


class CentralSample(SQLModel, table=True):
    """One round of the central monitor (``controller.central``), or several merged by downsampling (``span_s``
    says how many seconds it covers). ``None``: not measured (no previous reading for a rate, no broker or S3
    monitoring configured, the broker has not sent the figure yet). ``s3_probes``/``s3_probe_errors`` count the
    probes of the row's span."""

    __tablename__ = "central_sample"
    __table_args__ = (Index("ix_central_sample_controller_at", "controller_id", "at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    controller_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=TZ, index=True)
    span_s: float = 0.0
    downsampled: bool = Field(default=False, description="merged from full-resolution rows")
    cpu_percent: float = 0.0
    mem_used_percent: float = 0.0
    mem_available_bytes: int = Field(default=0, sa_type=BigInteger)
    disk_free_bytes: int = Field(default=0, sa_type=BigInteger)
    disk_used_percent: float = 0.0
    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_sent_bps: float | None = None
    net_recv_bps: float | None = None
    broker_connected: bool | None = None
    broker_clients: int | None = None
    broker_msgs_received_per_s: float | None = None
    broker_msgs_sent_per_s: float | None = None
    broker_msgs_dropped_per_s: float | None = None
    broker_dropped_total: int | None = Field(default=None, sa_type=BigInteger)
    broker_retained: int | None = Field(default=None, sa_type=BigInteger)
    s3_probes: int = 0
    s3_probe_errors: int = 0
    s3_probe_latency_s: float | None = None
    s3_probe_error: str = Field(default="", max_length=200)


# --- metered links ------------------------------------------------------------------------------


class AgentUsage(SQLModel, table=True):
    """Bytes an agent sent in one UTC hour, from the growth of its ``bytes_uploaded_total`` telemetry counter
    (``controller.store.usage``): what metered sites' budgets are measured with."""

    __tablename__ = "agent_usage"
    __table_args__ = (Index("ix_agent_usage_hour", "hour"),)

    agent_id: str = Field(primary_key=True, max_length=64)
    hour: datetime = Field(primary_key=True, sa_type=TZ, description="the UTC hour the bytes were reported in")
    bytes_sent: int = Field(default=0, sa_type=BigInteger)


# --- the central transcoder --------------------------------------------------------------------


class TranscodeJob(SQLModel, table=True):
    """One raw object to turn into FLAC (or zstd) on the central side (``controller.transcoder``).

    ``state``: 'queued' (waiting), 'running' (leased to ``lease_owner`` until ``lease_expires_at``; an expired
    lease may be taken over), 'done', 'skipped' (nothing to gain: the object is not raw, or zstd saves < 5 %) or
    'failed' (``error``; after ``attempts`` reached the configured limit). ``upload_id``: the multipart upload in
    progress for ``target_key``, so that a worker taking over aborts it; ``verified_at``: the new object gave back
    the original, only the raw object's deletion may be left."""

    __tablename__ = "transcode_job"
    __table_args__ = (
        Index("uq_transcode_job_key", "key", unique=True),
        Index("ix_transcode_job_state_lease", "state", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    key: str = Field(max_length=1024, description="the raw object")
    agent_id: str = Field(default="", max_length=64)
    upload_event_id: int | None = Field(default=None, sa_type=BigInteger)
    state: str = Field(default="queued", max_length=16)
    lease_owner: str = Field(default="", max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_type=TZ)
    attempts: int = 0
    error: str = Field(default="", max_length=500)
    target_key: str = Field(default="", max_length=1024)
    upload_id: str = Field(default="", max_length=256)
    codec: str = Field(default="", max_length=16, description="'flac' or 'zstd' once known")
    original_bytes: int = Field(default=0, sa_type=BigInteger)
    stored_bytes: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(sa_type=TZ)
    started_at: datetime | None = Field(default=None, sa_type=TZ)
    verified_at: datetime | None = Field(default=None, sa_type=TZ)
    finished_at: datetime | None = Field(default=None, sa_type=TZ)


class TranscoderWorker(SQLModel, table=True):
    """A running transcoder worker: ``seen_at`` is renewed every poll; stale rows are workers that are gone."""

    __tablename__ = "transcoder_worker"

    id: str = Field(primary_key=True, max_length=128)
    started_at: datetime = Field(sa_type=TZ)
    seen_at: datetime = Field(sa_type=TZ, index=True)
    jobs_done: int = Field(default=0, sa_type=BigInteger)
