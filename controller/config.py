"""``controller.toml``: one validated settings object; environment variables override the file
(docs/controller.md, "Configuration").

Unknown keys are an error with the key's path in the message. Overrides: ``EDGEFLEET_MQTT_URL``,
``EDGEFLEET_MQTT_TELEMETRY_URL``, ``EDGEFLEET_DATABASE_URL``, ``EDGEFLEET_S3_ENDPOINT|ACCESS_KEY|SECRET_KEY|BUCKET``.

``[agent_sites]`` is provisioning: which site each agent belongs to (``pi-01 = "north"``). The policy groups
agents by this site only; the site an agent reports in its birth is informational.

``[central]`` is the central node monitor: host figures every ``interval_s``, the broker's ``$SYS`` figures
with its own broker user (``mqtt_url``), an S3 probe with its own identity (``[central.s3_probe]``).

``[policy]`` and ``offline_after_s`` are what the policy is made of (``PolicyPart``); the dashboard reads them
from the same file (``load_policy``) so that its alerts use the thresholds the policy acts on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from controller.policy import PolicyConfig
from controller.policy.budget import DEFAULT_HORIZON_S, MAX_MONTH_START_DAY, SiteBudget, zone
from controller.store.database import DEFAULT_DATABASE_URL
from fleet_base.configfile import (
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
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.assignment import CONCURRENCY, MAX_COMPRESSION_LEVEL
from fleet_protocol.topics import AGENT_ID_PATTERN

TELEMETRY_ENV: dict[str, tuple[str | None, str]] = {"EDGEFLEET_MQTT_TELEMETRY_URL": ("mqtt", "telemetry_url")}
ENV_OVERRIDES = {**MQTT_ENV, **TELEMETRY_ENV, **DATABASE_ENV, **S3_ENV}
_AGENT_ID_RE = re.compile(f"^{AGENT_ID_PATTERN}$")
#: the store's ``agent.site`` column
MAX_SITE_LENGTH = 128
__all__ = ["ConfigError", "ControllerConfig", "PolicyPart", "load_config", "load_policy", "parse_config"]
#: the policy's defaults: ``[policy]`` leaves a key out, the policy's own default applies
_POLICY = PolicyConfig()


def optional_mqtt_url(value: str) -> MqttUrl | None:
    """An optional MQTT URL setting ("" = none), parsed: a bad URL raises ``ValueError`` naming what is wrong."""
    return MqttUrl.parse(value) if value else None


def _check_mqtt_url(cls: type, value: str) -> str:
    optional_mqtt_url(value)
    return value


def _check_windows(windows: list[str]) -> list[str]:
    check_windows(windows)
    return windows


class ControllerMqttSection(MqttSection):
    #: the shared-subscription telemetry connection's own broker user (required with ``shared_group``)
    telemetry_url: str = ""

    _parse_telemetry = field_validator("telemetry_url")(_check_mqtt_url)

    @property
    def telemetry(self) -> MqttUrl | None:
        return optional_mqtt_url(self.telemetry_url)


class MetricsSection(Section):
    #: ``host:port`` of the /healthz and /metrics endpoint; empty = off (port 0 = any free port)
    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return parse_listen(self.listen) if self.listen else None


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` → (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen must be 'host:port', got {value!r}")
    return host, int(port)


class WebhookSection(Section):
    """One receiver of alert notifications (Alertmanager's webhook JSON, POSTed)."""

    url: str = Field(min_length=1, max_length=1024, pattern=r"^https?://")
    #: an optional header sent with every request, e.g. ``Authorization`` = ``Bearer …``
    header: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9-]*$")
    secret: str = Field(default="", max_length=4096)
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _header_and_secret(self) -> WebhookSection:
        if bool(self.header) != bool(self.secret):
            raise ValueError("webhook header and secret go together")
        return self


class AlertsSection(Section):
    """``[alerts]``: the rules' thresholds, how often they run, and where notifications go."""

    enabled: bool = True
    evaluate_interval_s: float = Field(default=15.0, gt=0, le=3600)
    offline_for_s: float = Field(default=300.0, ge=0)
    disk_low_fraction: float = Field(default=0.10, ge=0, le=1)
    disk_low_bytes: int = Field(default=1 << 30, ge=0)
    backlog_max_age_h: float = Field(default=24.0, gt=0)
    no_upload_h: float = Field(default=24.0, gt=0)
    stuck_after_s: float = Field(default=1800.0, gt=0)
    clock_skew_s: float = Field(default=30.0, gt=0)
    s3_errors: int = Field(default=5, ge=1)
    s3_errors_window_s: float = Field(default=900.0, gt=0)
    broker_unreachable_s: float = Field(default=60.0, ge=0)
    #: a firing alert is notified again after this long (0: once only)
    repeat_interval_s: float = Field(default=14_400.0, ge=0)
    retry_first_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    give_up_after_h: float = Field(default=24.0, gt=0)
    #: the dashboard's address, for links in notifications (``externalURL``, ``generatorURL``)
    external_url: str = Field(default="", max_length=1024)
    webhooks: list[WebhookSection] = Field(default_factory=list)


class EventWebhookSection(Section):
    """One receiver of recording events: POSTed JSON, signed with ``secret`` (HMAC-SHA256)."""

    url: str = Field(min_length=1, max_length=1024, pattern=r"^https?://")
    secret: str = Field(min_length=16, max_length=4096)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class RecordingsEventsSection(Section):
    """``[recordings_events]``: an event for every recording stored and verified (cataloged), to webhooks and
    optionally an MQTT topic (docs/recordings-events.md)."""

    webhooks: list[EventWebhookSection] = Field(default_factory=list)
    #: also publish each event on ``edgefleet/v1/recordings/stored`` (QoS 1, not retained)
    mqtt: bool = False
    #: recordings cataloged longer ago than this when first seen get no event (a new webhook is not flooded)
    lookback_h: float = Field(default=24.0, gt=0, le=24 * 365)
    interval_s: float = Field(default=5.0, gt=0, le=3600)
    retry_first_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    give_up_after_h: float = Field(default=72.0, gt=0)

    @model_validator(mode="after")
    def _distinct(self) -> RecordingsEventsSection:
        urls = [w.url for w in self.webhooks]
        if len(set(urls)) != len(urls):
            raise ValueError("each recordings_events webhook url once")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks) or self.mqtt


class ControllerS3Section(S3Section):
    stale_upload_hours: float = Field(default=24.0, gt=0)
    janitor_interval_s: float = Field(default=3600.0, gt=0)


class CentralProbeSection(Section):
    """The S3 probe's own identity (endpoint and bucket come from ``[s3]``): it may put, get and delete objects
    under ``prefix`` only."""

    access_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)
    prefix: str = Field(default="_probe/", min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.-]+/$")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class CentralSection(Section):
    """The central node monitor (docs/controller.md, "Central node monitor")."""

    enabled: bool = True
    interval_s: float = Field(default=15.0, ge=1, le=3600)
    #: the file system whose free space is watched; "" = the SQLite database's directory, else "/"
    disk_path: str = ""
    #: the broker user that reads ``$SYS/broker/#`` (its own user: one per connection); "" = no broker figures
    mqtt_url: str = ""
    retention_days: float = Field(default=30.0, gt=0)
    #: rows older than this are merged into one per ``downsample_s``
    full_resolution_hours: float = Field(default=24.0, gt=0)
    downsample_s: float = Field(default=300.0, ge=1)
    s3_probe: CentralProbeSection | None = None

    _parse_mqtt = field_validator("mqtt_url")(_check_mqtt_url)

    @property
    def mqtt(self) -> MqttUrl | None:
        return optional_mqtt_url(self.mqtt_url)


class CatalogSection(Section):
    """``[catalog]``: the recordings catalog thread (docs/recordings.md); it runs when ``[s3]`` is set. It reads
    object headers (s3:GetObject): with ``access_key``/``secret_key`` it uses that identity (read-only, its own),
    else the ``[s3]`` one, which then needs s3:GetObject on the bucket."""

    enabled: bool = True
    access_key: str = ""
    secret_key: str = ""
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    interval_s: float = Field(default=10.0, ge=0.5, le=3600)
    #: events turned into rows, and objects read, per step of a round
    batch: int = Field(default=100, ge=1, le=10_000)
    #: tries of one object before its row is 'failed' (S3 not answering counts none)
    max_attempts: int = Field(default=4, ge=1, le=20)
    #: delay before the second try; doubles with each further try
    retry_first_s: float = Field(default=10.0, ge=0, le=86_400)
    #: the whole event table is looked at again this often (events committed late with lower ids)
    sweep_interval_s: float = Field(default=600.0, ge=1, le=86_400)

    @model_validator(mode="after")
    def _identity(self) -> CatalogSection:
        if bool(self.access_key) != bool(self.secret_key):
            raise ValueError("catalog.access_key and catalog.secret_key go together")
        return self


#: the largest budget or cap that makes sense (1 PB)
MAX_BUDGET_BYTES = 10**15


class SiteSection(Section):
    uplink_bps: int | None = Field(default=None, ge=0)
    windows: list[str] | None = None
    #: the site's clock (IANA name, e.g. ``Europe/Berlin``): its upload windows and its budget's days
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    #: metered link: bytes a calendar month (from ``month_start_day``, 00:00 local); 0 = not metered
    monthly_budget_bytes: int = Field(default=0, ge=0, le=MAX_BUDGET_BYTES)
    month_start_day: int = Field(default=1, ge=1, le=MAX_MONTH_START_DAY)
    #: each agent's bytes a local day; unset = ``[policy] agent_daily_cap_bytes``; 0 = no cap
    agent_daily_cap_bytes: int | None = Field(default=None, ge=0, le=MAX_BUDGET_BYTES)

    _windows = field_validator("windows")(lambda cls, v: None if v is None else _check_windows(v))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


class PolicySection(Section):
    soft_limit_c: float = _POLICY.soft_limit_c
    hard_limit_c: float = _POLICY.hard_limit_c
    cool_margin_c: float = Field(default=_POLICY.cool_margin_c, ge=0)
    cool_hold_s: float = Field(default=_POLICY.cool_hold_s, ge=0)
    site_uplink_bps: int = Field(default=_POLICY.site_uplink_bps, ge=0)
    windows: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(default=_POLICY.max_concurrency, ge=1, le=CONCURRENCY.high)
    ram_budget_fraction: float = Field(default=_POLICY.ram_budget_fraction, gt=0, le=1)
    default_compression_level: int = Field(default=_POLICY.default_compression_level, ge=0, le=MAX_COMPRESSION_LEVEL)
    widen_backlog_bytes: int = Field(default=_POLICY.widen_backlog_bytes, ge=0)
    #: every agent's bytes a local day unless its site says otherwise; 0 = no cap
    agent_daily_cap_bytes: int = Field(default=0, ge=0, le=MAX_BUDGET_BYTES)
    #: what the measure of bytes sent misses (HTTP/TLS framing, failed attempts), added to it: 0.05 = 5 %
    budget_overhead_fraction: float = Field(default=0.05, ge=0, le=1)
    #: a metered agent's share of today's allowance is paced over this long (its bandwidth cap)
    budget_horizon_s: float = Field(default=DEFAULT_HORIZON_S, ge=10, le=86_400)
    sites: dict[str, SiteSection] = Field(default_factory=dict)

    _windows = field_validator("windows")(lambda cls, v: _check_windows(v))

    def budget(self, site: SiteSection | None) -> SiteBudget:
        """A site's metering (``None``: a site not configured)."""
        cap = self.agent_daily_cap_bytes
        if site is not None and site.agent_daily_cap_bytes is not None:
            cap = site.agent_daily_cap_bytes
        return SiteBudget(
            monthly_bytes=site.monthly_budget_bytes if site else 0,
            month_start_day=site.month_start_day if site else 1,
            timezone=site.timezone if site else "UTC",
            agent_daily_bytes=cap,
            overhead_fraction=self.budget_overhead_fraction,
            horizon_s=self.budget_horizon_s,
        )

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
                site_budgets={k: self.budget(s) for k, s in self.sites.items()},
                default_budget=self.budget(None),
                site_timezones={k: s.timezone for k, s in self.sites.items()},
            )
        except ValueError as exc:
            raise ConfigError(f"[policy]: {exc}") from None


class PolicyPart(Section):
    """The part of ``controller.toml`` the policy is made of: all the dashboard reads of it (no secrets)."""

    offline_after_s: float = Field(default=_POLICY.offline_after_s, gt=0)
    policy: PolicySection = Field(default_factory=PolicySection)

    def policy_config(self) -> PolicyConfig:
        return self.policy.to_policy(self.offline_after_s)


class ControllerConfig(PolicyPart):
    controller_id: str = Field(default="ctl-1", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    database_url: str = DEFAULT_DATABASE_URL
    #: migrate the database to this release's schema at start (under a lock); else refuse an outdated one
    database_migrate: bool = False
    tick_seconds: float = Field(default=1.0, gt=0)
    #: > 0: between full ticks a round decides only the sites whose inputs changed, a full tick at least this
    #: often (and every round while a full tick costs under a tenth of tick_seconds: a small fleet); 0: every round
    #: is a full tick (docs/bench/scale.md)
    full_tick_seconds: float = Field(default=10.0, ge=0, le=3600)
    shared_group: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    flush_interval_s: float = Field(default=0.2, gt=0)
    telemetry_retention_days: float = Field(default=30.0, gt=0)
    #: how long the broker keeps this controller's MQTT session (and queues its messages) while it is away
    session_expiry_s: int = Field(default=86_400, ge=0, le=0xFFFFFFFF)
    #: a message dated later than its arrival + this is taken as sent at arrival + this (clocks ahead, or lies)
    max_clock_skew_s: float = Field(default=5.0, ge=0, le=3600)
    mqtt: ControllerMqttSection
    s3: ControllerS3Section | None = None
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    recordings_events: RecordingsEventsSection = Field(default_factory=RecordingsEventsSection)
    central: CentralSection = Field(default_factory=CentralSection)
    catalog: CatalogSection = Field(default_factory=CatalogSection)
    #: provisioning: agent id → site name; an agent not listed has no site ("")
    agent_sites: dict[str, str] = Field(default_factory=dict)

    @field_validator("agent_sites")
    @classmethod
    def _sites(cls, sites: dict[str, str]) -> dict[str, str]:
        bad_ids = sorted(agent_id for agent_id in sites if not _AGENT_ID_RE.match(agent_id))
        if bad_ids:
            raise ValueError(f"not agent ids (must match {AGENT_ID_PATTERN}): {bad_ids[:5]}")
        long = sorted(agent_id for agent_id, site in sites.items() if len(site) > MAX_SITE_LENGTH)
        if long:
            raise ValueError(f"site names longer than {MAX_SITE_LENGTH} characters for {long[:5]}")
        return sites

    @model_validator(mode="after")
    def _telemetry_connection(self) -> ControllerConfig:
        telemetry = self.mqtt.telemetry
        if self.shared_group and telemetry is None:
            raise ValueError(
                "mqtt.telemetry_url is required with shared_group: the shared telemetry connection needs its "
                "own broker user (the broker ties each client id to its user name)"
            )
        if telemetry is not None and not self.shared_group:
            raise ValueError("mqtt.telemetry_url is only used with shared_group: remove it or set shared_group")
        if telemetry is not None and telemetry.username == self.mqtt.parsed.username:
            raise ValueError(
                "mqtt.telemetry_url must use another broker user than mqtt.url (one user per MQTT connection)"
            )
        return self

    @model_validator(mode="after")
    def _central(self) -> ControllerConfig:
        if self.central.s3_probe is not None and self.s3 is None:
            raise ValueError("central.s3_probe needs [s3] (its endpoint and bucket)")
        monitor = self.central.mqtt
        others = {self.mqtt.parsed.username} | ({self.mqtt.telemetry.username} if self.mqtt.telemetry else set())
        if monitor is not None and monitor.username in others:
            raise ValueError("central.mqtt_url must use a broker user of its own (one user per MQTT connection)")
        return self


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ControllerConfig:
    config = parse_model(ControllerConfig, data, env or {}, ENV_OVERRIDES, "controller configuration")
    config.policy_config()  # cross-field checks (soft < hard)
    return config


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> ControllerConfig:
    """Read ``path`` (TOML; ``None`` = environment only) and apply environment overrides."""
    data = read_toml(path) if path is not None else {}
    return parse_config(data, os.environ if env is None else env)


def load_policy(path: Path) -> PolicyConfig:
    """The policy's configuration as the controller reading ``path`` makes it: ``[policy]`` and
    ``offline_after_s``, checked as the controller checks them. The rest of the file (its secrets) is dropped
    unchecked and unkept, and no environment variable applies."""
    data = read_toml(path)
    part = parse_model(
        PolicyPart,
        {k: v for k, v in data.items() if k in PolicyPart.model_fields},
        {},
        {},
        f"controller configuration {path}",
    )
    return part.policy_config()
