"""What ``assign`` sees and returns: small frozen value objects, no I/O.

The policy's own memory between ticks (thermal level, when cooling started, whether a large backlog
opened the window) is ``PolicyState``: it comes in with each agent and goes out with each decision,
so the service stores it and nothing is hidden inside the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from controller.policy.budget import SiteBudget, Usage, overridden, zone
from fleet_plan.thermal import DEFAULT_LIMITS, check_limits
from fleet_protocol.assignment import (
    CONCURRENCY,
    DEFAULT_COMPRESSION_LEVEL,
    MAX_COMPRESSION_LEVEL,
    AssignmentSettings,
)


@dataclass(frozen=True)
class PolicyConfig:
    """The ``[policy]`` section of controller.toml (see docs/controller.md)."""

    soft_limit_c: float = DEFAULT_LIMITS.soft_limit_c
    hard_limit_c: float = DEFAULT_LIMITS.hard_limit_c
    cool_margin_c: float = DEFAULT_LIMITS.cool_margin_c
    cool_hold_s: float = DEFAULT_LIMITS.cool_hold_s
    site_uplink_bps: int = 12_500_000
    site_uplinks: Mapping[str, int] = field(default_factory=dict)
    windows: tuple[str, ...] = ()
    site_windows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_concurrency: int = 8
    ram_budget_fraction: float = 0.25
    default_compression_level: int = DEFAULT_COMPRESSION_LEVEL
    widen_backlog_bytes: int = 0
    offline_after_s: float = 60.0
    #: metered sites (``budget``); a site not listed is not metered unless ``default_budget`` is
    site_budgets: Mapping[str, SiteBudget] = field(default_factory=dict)
    default_budget: SiteBudget = field(default_factory=SiteBudget)
    #: the IANA time zone of a site's clock (its upload windows, its budget's days); not listed: UTC
    site_timezones: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_limits(self)
        self.check_timezones()
        if not 1 <= self.max_concurrency <= CONCURRENCY.high:
            raise ValueError(f"max_concurrency must be 1..{CONCURRENCY.high}")
        if not 0 < self.ram_budget_fraction <= 1:
            raise ValueError("ram_budget_fraction must be in (0, 1]")
        if not 0 <= self.default_compression_level <= MAX_COMPRESSION_LEVEL:
            raise ValueError(f"default_compression_level must be 0..{MAX_COMPRESSION_LEVEL}")
        if self.site_uplink_bps < 0 or any(v < 0 for v in self.site_uplinks.values()):
            raise ValueError("uplink capacities must be ≥ 0 (0 = no cap)")

    def uplink_for(self, site: str) -> int:
        return self.site_uplinks.get(site, self.site_uplink_bps)

    def windows_for(self, site: str) -> tuple[str, ...]:
        return self.site_windows.get(site, self.windows)

    def budget_for(self, site: str) -> SiteBudget:
        return self.site_budgets.get(site, self.default_budget)

    def timezone_for(self, site: str) -> str:
        return self.site_timezones.get(site, "UTC")

    def check_timezones(self) -> None:
        for name in self.site_timezones.values():
            zone(name)


@dataclass(frozen=True)
class PolicyState:
    """Hysteresis memory of one agent; ``PolicyState()`` for an agent never seen before."""

    thermal_level: int = 0
    cool_since: datetime | None = None
    window_widened: bool = False


@dataclass(frozen=True)
class TelemetryView:
    at: datetime
    temperature_c: float | None = None
    throttled: int = 0
    cpu_percent: float = 0.0
    backlog_files: int = 0
    backlog_bytes: int = 0
    backlog_oldest_age_s: float = 0.0
    active_uploads: int = 0
    throughput_bps: float = 0.0
    errors_total: int = 0


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    site: str = ""
    online: bool = True
    cores: int = 1
    ram_bytes: int = 0
    # measured FLAC encode speed (WAV bytes/s of one encoder) and stored ÷ WAV ratio per level (index = level,
    # 0 = not measured), and how many encoders run side by side (0 = unknown: the cores): birth, then telemetry
    encode_bps_by_level: tuple[float, ...] = ()
    compression_ratio_by_level: tuple[float, ...] = ()
    encode_cores: float = 0.0
    telemetry: TelemetryView | None = None
    memory_limit_bytes: int = 0  # the agent's own limit (cgroup, else RAM); 0 = not reported: RAM budget only
    baseline_rss_bytes: int = 0
    state: PolicyState = PolicyState()
    previous: AssignmentSettings | None = None  # the assignment in force
    #: the central side's transcoding capacity (transcoder workers with a recent heartbeat; the same for every
    #: agent): when > 0 a hot agent sends its files raw and the transcoder compresses them (docs/transcoder.md)
    transcoder_capacity: int = 0


@dataclass(frozen=True)
class OverrideView:
    """An operator override; ``None`` = not set. ``who`` names the operator for the reason."""

    who: str = "operator"
    paused: bool | None = None
    windows: tuple[str, ...] | None = None
    concurrency_cap: int | None = None
    bandwidth_cap_bps: int | None = None
    upload_now: bool = False
    #: metered links: a site's monthly data budget (site overrides only) and a daily cap (an agent's own, or each
    #: agent's of the site); 0 = none; beat ``[policy.sites]`` (``FleetView.budget_for``)
    monthly_budget_bytes: int | None = None
    daily_cap_bytes: int | None = None

    def merged_over(self, base: OverrideView | None) -> OverrideView:
        """This (agent) override, falling back field by field to ``base`` (the site's)."""
        if base is None:
            return self
        return OverrideView(
            who=self.who,
            paused=self.paused if self.paused is not None else base.paused,
            windows=self.windows if self.windows is not None else base.windows,
            concurrency_cap=self.concurrency_cap if self.concurrency_cap is not None else base.concurrency_cap,
            bandwidth_cap_bps=(
                self.bandwidth_cap_bps if self.bandwidth_cap_bps is not None else base.bandwidth_cap_bps
            ),
            upload_now=self.upload_now or base.upload_now,
            monthly_budget_bytes=base.monthly_budget_bytes,
            daily_cap_bytes=self.daily_cap_bytes if self.daily_cap_bytes is not None else base.daily_cap_bytes,
        )


@dataclass(frozen=True)
class FleetView:
    agents: tuple[AgentView, ...] = ()
    agent_overrides: Mapping[str, OverrideView] = field(default_factory=dict)
    site_overrides: Mapping[str, OverrideView] = field(default_factory=dict)
    #: measured bytes sent in the budget month and local day of the agent's site: per agent id, per site
    agent_usage: Mapping[str, Usage] = field(default_factory=dict)
    site_usage: Mapping[str, Usage] = field(default_factory=dict)

    def override_for(self, agent: AgentView) -> OverrideView | None:
        own = self.agent_overrides.get(agent.agent_id)
        site = self.site_overrides.get(agent.site)
        if own is None:
            return site
        return own.merged_over(site)

    def budget_for(self, site: str, config: PolicyConfig) -> SiteBudget:
        """The site's budget: the configured one with the site's override (an operator's beats the config)."""
        budget = config.budget_for(site)
        override = self.site_overrides.get(site)
        if override is None:
            return budget
        return overridden(budget, override.monthly_budget_bytes, override.daily_cap_bytes)

    def daily_cap_for(self, agent_id: str) -> int | None:
        """The agent's own daily cap (its override), ``None``: its site's."""
        override = self.agent_overrides.get(agent_id)
        return None if override is None else override.daily_cap_bytes

    @property
    def budget_overridden(self) -> bool:
        """An operator set a data budget or a daily cap somewhere (a site may be metered the config does not)."""
        return any(
            o.monthly_budget_bytes is not None or o.daily_cap_bytes is not None
            for o in (*self.agent_overrides.values(), *self.site_overrides.values())
        )


@dataclass(frozen=True)
class Decision:
    """An agent's next assignment: a change in ``settings`` is a new version."""

    settings: AssignmentSettings
    reason: str
    state: PolicyState
