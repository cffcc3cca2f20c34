"""What one running dashboard is made of; built once by ``dashboard.app.create_app`` (composition root)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from controller.policy import PolicyConfig
from dashboard.auth import Authenticator
from dashboard.config import DashboardConfig
from dashboard.live import LiveHub, SnapshotCache
from dashboard.metrics import LabelledCounter, MetricsPage
from dashboard.queue_control import QueueClient


@dataclass(frozen=True)
class DashboardCounters:
    """The dashboard's own counters (the fleet's come from the database at scrape time)."""

    logins: LabelledCounter
    overrides: LabelledCounter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> DashboardCounters:
        counters = cls(
            logins=LabelledCounter(
                "edgefleet_dashboard_logins",
                "login attempts by outcome: ok, failed (wrong name or password), throttled (too many failures)",
                "outcome",
                ("ok", "failed", "throttled"),
            ),
            overrides=LabelledCounter(
                "edgefleet_dashboard_override_changes",
                "operator override changes by action: set, clear",
                "action",
                ("set", "clear"),
            ),
        )
        registry.register(counters.logins)
        registry.register(counters.overrides)
        return counters


@dataclass(frozen=True)
class AppContext:
    config: DashboardConfig
    engine: Engine
    auth: Authenticator
    templates: Jinja2Templates
    snapshots: SnapshotCache
    hub: LiveHub
    registry: CollectorRegistry
    metrics_page: MetricsPage
    counters: DashboardCounters
    clock: Callable[[], datetime]
    queue: QueueClient | None = None  # queue control over MQTT, when ``[mqtt]`` is configured

    @property
    def limits(self) -> PolicyConfig:
        """The controller's policy: its thermal limits are what alerts and badges compare with."""
        return self.config.policy
