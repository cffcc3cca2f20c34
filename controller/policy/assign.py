"""``assign(snapshot, config, now)``: every live agent's assignment and why. Pure: no I/O, no clock.

Order of decisions for one agent (each step may only lower what the one before allowed):
    1. size: part size from RAM and measured throughput; full concurrency from cores and RAM
    2. heat: thermal level with hysteresis (``thermal.step``) → compression, concurrency, raw, pause
    2½. compression: the cost model under the heat's cap (``compression.decide``; after the operator's caps)
    3. operator: pause, concurrency cap, bandwidth cap, windows, upload now (reason says "operator")
    4. windows: operator's, else the site's, else the default; a backlog over the threshold opens them
    5. budget: a metered site's allowance today shared among its agents, paced as a bandwidth cap; held at 0
    6. bandwidth: the site's uplink shared max-min fairly among its live, unpaused agents inside their windows
Offline agents, and agents whose telemetry is older than ``offline_after_s``, get nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from controller.policy import budget, compression, sizing, thermal
from controller.policy.bandwidth import Claim, age_weight, inside_windows, max_min_share
from controller.policy.bounds import fit_reason, sane_agent, sane_override
from controller.policy.inputs import AgentView, Decision, FleetView, OverrideView, PolicyConfig, PolicyState
from fleet_plan.thermal import CRITICAL, NORMAL, throttle
from fleet_protocol.assignment import BANDWIDTH, AssignmentSettings, MiB, fit_windows

#: What an agent without backlog asks of the uplink (it may start a new file any moment).
IDLE_DEMAND_BPS = 256 * 1024
#: A share may rise by up to this factor before the assignment is republished (falls apply at once).
SHARE_SLACK = 1.25


def _rate(bps: float) -> str:
    return f"{bps / 1e6:.1f} MB/s"


def _size(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def _level_word(level: int) -> str:
    return "raw" if level < 0 else str(level)


def is_live(agent: AgentView, config: PolicyConfig, now: datetime) -> bool:
    if not agent.online:
        return False
    if agent.telemetry is None:
        return True
    return (now - agent.telemetry.at).total_seconds() <= config.offline_after_s


@dataclass(frozen=True)
class _Draft:
    agent: AgentView
    settings: AssignmentSettings
    reasons: tuple[str, ...]
    state: PolicyState
    bandwidth_cap: int | None
    has_backlog: bool


def _heat(
    agent: AgentView, config: PolicyConfig, now: datetime, full: int, part: int
) -> tuple[AssignmentSettings, str, PolicyState]:
    step = thermal.step(agent.state, agent.telemetry, config, now)
    level = step.level
    base_compression = config.default_compression_level
    cool = AssignmentSettings(concurrency=full, part_size=part, compression_level=base_compression)
    settings = throttle(cool, level)
    concurrency, compression = settings.concurrency, settings.compression_level
    if level == CRITICAL:
        return settings, f"{step.why}: paused", step.state
    if level == NORMAL:
        return settings, "" if step.quiet else step.why, step.state
    changes = []
    if compression != base_compression:
        changes.append(f"compression {base_compression} → {_level_word(compression)}")
    if concurrency != full:
        changes.append(f"concurrency {full} → {concurrency}")
    return settings, f"{step.why}: {', '.join(changes)}", step.state


def _operator(
    settings: AssignmentSettings, override: OverrideView | None
) -> tuple[AssignmentSettings, list[str], int | None]:
    if override is None:
        return settings, [], None
    words: list[str] = []
    who = f"operator {override.who}"
    if override.paused:
        settings = replace(settings, paused=True)
        words.append(f"{who}: paused")
    cap = override.concurrency_cap
    if cap is not None and cap < settings.concurrency:
        words.append(f"{who}: concurrency cap {cap} ({settings.concurrency} → {cap})")
        settings = replace(settings, concurrency=cap, paused=settings.paused or cap == 0)
    if override.bandwidth_cap_bps is not None:
        words.append(f"{who}: bandwidth cap {_rate(override.bandwidth_cap_bps)}")
    if override.windows is not None:
        shown = ", ".join(override.windows) or "always"
        settings = replace(settings, windows=tuple(override.windows))
        words.append(f"{who}: windows {shown}")
    if override.upload_now:
        settings = replace(settings, windows=(), upload_now=True)
        words.append(f"{who}: upload now")
    return settings, words, override.bandwidth_cap_bps


def _windows(
    agent: AgentView,
    settings: AssignmentSettings,
    override: OverrideView | None,
    config: PolicyConfig,
    state: PolicyState,
) -> tuple[AssignmentSettings, str | None, PolicyState]:
    backlog = agent.telemetry.backlog_bytes if agent.telemetry else 0
    threshold = config.widen_backlog_bytes
    widened = False
    if threshold > 0:
        widened = backlog >= threshold or (state.window_widened and backlog >= threshold // 2)
    state = replace(state, window_widened=widened)
    if settings.upload_now or (override is not None and override.windows is not None):
        return settings, None, state
    windows = config.windows_for(agent.site)
    if not windows:
        return settings, None, state
    if widened:
        return settings, f"backlog {_size(backlog)} ≥ {_size(threshold)}: window {', '.join(windows)} opened", state
    return replace(settings, windows=fit_windows(windows)), f"windows {', '.join(windows)}", state


def _draft(agent: AgentView, override: OverrideView | None, config: PolicyConfig, now: datetime) -> _Draft:
    telemetry = agent.telemetry
    throughput = telemetry.throughput_bps if telemetry else 0.0
    previous_part = agent.previous.part_size if agent.previous else None
    part = sizing.part_size(agent.ram_bytes, throughput, previous_part, config)
    full, full_why = sizing.full_concurrency(agent.cores, agent.ram_bytes, part, config)
    full, part, full_why = sizing.within_memory(full, part, full_why, agent)
    link = "no throughput measured" if throughput <= 0 else f"link {_rate(throughput)}"
    reasons = [f"concurrency {full} ({full_why}), part {part // MiB} MiB ({link})"]
    settings, heat_why, state = _heat(agent, config, now, full, part)
    if heat_why:
        reasons.append(heat_why)
    settings, operator_words, cap = _operator(settings, override)
    reasons.extend(operator_words)
    settings, compression_why = compression.decide(agent, settings, state.thermal_level, cap, config)
    if compression_why:
        reasons.append(compression_why)
    settings, window_why, state = _windows(agent, settings, override, config, state)
    if window_why:
        reasons.append(window_why)
    has_backlog = telemetry is not None and (telemetry.backlog_bytes > 0 or telemetry.active_uploads > 0)
    return _Draft(agent, settings, tuple(reasons), state, cap, has_backlog)


def _budget_site(
    site: str, drafts: list[_Draft], snapshot: FleetView, config: PolicyConfig, now: datetime
) -> list[_Draft]:
    """A metered site's drafts: held when its allowance is spent, else paced (``controller.policy.budget``)."""
    site_budget = snapshot.budget_for(site, config)
    caps = {d.agent.agent_id: snapshot.daily_cap_for(d.agent.agent_id) for d in drafts}
    if not budget.is_metered(site_budget, caps.values()):
        return drafts
    plan = budget.site_plan(site_budget, snapshot.site_usage.get(site, budget.Usage()), now)
    usage = {d.agent.agent_id: snapshot.agent_usage.get(d.agent.agent_id, budget.Usage()) for d in drafts}
    needs = {
        d.agent.agent_id: budget.AgentNeed(
            d.agent.telemetry.backlog_bytes if d.agent.telemetry else 0,
            age_weight(d.agent.telemetry.backlog_oldest_age_s if d.agent.telemetry else 0.0, d.has_backlog),
            usage[d.agent.agent_id].today_bytes,
            caps[d.agent.agent_id],
        )
        for d in drafts
        if not d.settings.paused
    }
    given = budget.allowances(plan, needs)
    result = []
    for draft in drafts:
        allowance = given.get(draft.agent.agent_id)
        set_by = budget.override_reason(snapshot.override_for(draft.agent))
        draft = replace(draft, reasons=(*draft.reasons, set_by)) if set_by else draft
        if allowance is None or allowance.allowance_bytes is None:
            result.append(draft)
        elif allowance.held:
            today, own = usage[draft.agent.agent_id].today_bytes, caps[draft.agent.agent_id]
            why = budget.cap_reason(plan, today, own) if allowance.capped else budget.hold_reason(site, plan)
            settings = replace(draft.settings, paused=True)
            result.append(replace(draft, settings=settings, reasons=(*draft.reasons, why)))
        else:
            cap = draft.bandwidth_cap
            pace = allowance.bandwidth_bps if cap is None or cap <= 0 else min(cap, allowance.bandwidth_bps)
            why = budget.pace_reason(site, plan, allowance)
            settings = _fit_in_flight(draft.settings, allowance.allowance_bytes)
            if settings != draft.settings:
                why += (
                    f"; in flight within it: concurrency {draft.settings.concurrency} → {settings.concurrency}, "
                    f"part {draft.settings.part_size // MiB} → {settings.part_size // MiB} MiB"
                )
            result.append(replace(draft, settings=settings, bandwidth_cap=pace, reasons=(*draft.reasons, why)))
    return result


def _fit_in_flight(settings: AssignmentSettings, allowance_bytes: int) -> AssignmentSettings:
    concurrency, part = budget.in_flight_fit(settings.concurrency, settings.part_size, allowance_bytes)
    return replace(settings, concurrency=concurrency, part_size=part)


def _claims(drafts: list[_Draft], uplink: int) -> dict[str, Claim]:
    claims: dict[str, Claim] = {}
    for draft in drafts:
        demand = float(uplink if draft.has_backlog else min(uplink, IDLE_DEMAND_BPS))
        if draft.bandwidth_cap is not None and draft.bandwidth_cap > 0:
            demand = min(demand, draft.bandwidth_cap)
        age = draft.agent.telemetry.backlog_oldest_age_s if draft.agent.telemetry else 0.0
        claims[draft.agent.agent_id] = Claim(demand, age_weight(age, draft.has_backlog))
    return claims


def _share_site(site: str, drafts: list[_Draft], config: PolicyConfig, now: datetime) -> dict[str, tuple[int, str]]:
    """The uplink shared among the agents inside their windows; an agent outside gets the share it would have
    with every unpaused agent of the site inside (what it may use when its window opens before the next tick)."""
    uplink = config.uplink_for(site)
    unpaused = [d for d in drafts if not d.settings.paused]
    if uplink <= 0 or not unpaused:
        return {}
    tz = budget.zone(config.timezone_for(site))
    inside = [d for d in unpaused if inside_windows(d.settings.windows, now, tz)]
    claims = _claims(unpaused, uplink)
    shares = max_min_share(uplink, claims)
    if inside:
        shares |= max_min_share(uplink, {d.agent.agent_id: claims[d.agent.agent_id] for d in inside})
    busy = sum(1 for d in inside if d.has_backlog)
    where = f"site {site}" if site else "the site"
    inside_ids = {d.agent.agent_id for d in inside}
    outside = len(unpaused) - len(inside)
    others = f", {outside} outside their window" if outside else ""
    return {
        key: (
            share,
            f"share {_rate(share)} of {_rate(uplink)} uplink ({where}: {busy} of {len(inside)} agents "
            f"with backlog{others}{'' if key in inside_ids else ', this one too'}, weight {claims[key].weight:g})",
        )
        for key, share in shares.items()
    }


def _sticky(share: int, agent: AgentView) -> int:
    """Keep the previous share while the new one is at most ``SHARE_SLACK`` higher: a small rise is not
    worth republishing. Only ever keeps a *lower* value, so the site's sum stays within the uplink."""
    previous = agent.previous.bandwidth_bps if agent.previous else 0
    if 0 < previous <= share <= previous * SHARE_SLACK:
        return previous
    return share


def assign(snapshot: FleetView, config: PolicyConfig, now: datetime) -> dict[str, Decision]:
    """The assignment (settings, reason, next policy state) of every live agent, by agent id.

    Total: whatever the snapshot holds, every decision fits the ``Assignment`` message (``AssignmentSettings``
    is valid by construction; ``bounds`` makes the inputs sane)."""
    drafts: dict[str, list[_Draft]] = defaultdict(list)
    for agent in sorted(snapshot.agents, key=lambda a: a.agent_id):
        if is_live(agent, config, now):
            override = sane_override(snapshot.override_for(agent))
            drafts[agent.site].append(_draft(sane_agent(agent), override, config, now))
    decisions: dict[str, Decision] = {}
    for site in sorted(drafts):
        site_drafts = _budget_site(site, drafts[site], snapshot, config, now)
        shares = _share_site(site, site_drafts, config, now)
        for draft in site_drafts:
            settings, reasons = draft.settings, list(draft.reasons)
            if draft.agent.agent_id in shares:
                share, why = shares[draft.agent.agent_id]
                settings = replace(settings, bandwidth_bps=BANDWIDTH.fit(_sticky(share, draft.agent)))
                reasons.append(why)
            elif draft.bandwidth_cap:
                settings = replace(settings, bandwidth_bps=draft.bandwidth_cap)
            reason = fit_reason("; ".join(reasons))
            decisions[draft.agent.agent_id] = Decision(settings, reason, draft.state)
    return dict(sorted(decisions.items()))
