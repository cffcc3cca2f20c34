"""One tick: stale agents offline → snapshot from the store → ``assign`` → store new versions → publish.

Only assignments whose operative settings changed get a new version and are published (a reason
that only differs in a temperature's last digit does not churn the fleet). After a (re)connect to
the broker every current assignment of a live agent is published again, same version, so a broker
that lost its retained messages gets them back.

One agent's values must not stop the decisions for the others: if ``assign`` raises for the fleet, it
runs again site by site (sites are independent), and within a site that still fails, the agents whose
own decision raises are left out (logged, counted in ``policy_errors``; they keep their last assignment).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from controller.policy import AgentView, Decision, FleetSnapshot, PolicyConfig, assign, is_live
from controller.policy.thermal import level_for
from controller.service.snapshot import build_snapshot
from controller.store.assignments import (
    FleetRows,
    Proposal,
    VersionConflict,
    commit_decisions,
    load_fleet,
    settings_of,
    state_of,
)
from controller.store.ingest import mark_stale_offline
from controller.store.instances import heartbeat, sites_for
from controller.store.models import CurrentAssignment
from fleet_protocol import Assignment, Telemetry

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class TickResult:
    live: int
    published: int
    went_offline: int
    seconds: float


def _version(row: CurrentAssignment | None) -> int | None:
    return None if row is None else row.version


class Ticker:
    def __init__(
        self,
        engine: Engine,
        config: PolicyConfig,
        *,
        controller_id: str,
        publish: Callable[[Assignment], None],
        heartbeat_ttl_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.config = config
        self.controller_id = controller_id
        self.publish = publish
        self._seq = itertools.count()
        self.republish_all = False
        #: per agent, from the last tick: concurrency in force and thermal level (for ingest's fast path)
        self.concurrency: dict[str, int] = {}
        self.levels: dict[str, int] = {}
        self.sites: dict[str, str] = {}
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.started_at = datetime.now(UTC)
        self.live_controllers: list[str] = [controller_id]
        self.own_sites = 0  # sites this controller ran its last full tick for
        self.conflicts = 0
        self.published_total = 0
        self.policy_errors = 0

    def needs_fast_tick(self, telemetry: list[tuple[Telemetry, datetime]]) -> bool:
        """A reading that asks for a higher thermal level than in force: react now, not next tick."""
        return any(self._hotter(m) for m, _at in telemetry)

    def _to_message(self, row: CurrentAssignment) -> Assignment:
        return Assignment.of(
            settings_of(row), agent_id=row.agent_id, seq=next(self._seq), version=row.version, reason=row.reason
        )

    def _my_share(self, rows: FleetRows) -> FleetRows:
        """With several live controllers, only the sites dealt to this one (``instances.sites_for``)."""
        if len(self.live_controllers) <= 1:
            self.own_sites = len({agent.site for agent in rows.agents})
            return rows
        mine = sites_for(self.controller_id, self.live_controllers, {agent.site for agent in rows.agents})
        self.own_sites = len(mine)
        agents = [agent for agent in rows.agents if agent.site in mine]
        ids = {agent.id for agent in agents}
        return FleetRows(agents, {i: r for i, r in rows.current.items() if i in ids}, rows.overrides)

    def hot_sites(self, telemetry: list[tuple[Telemetry, datetime]]) -> set[str] | None:
        """Sites of agents whose reading asks for a hotter level; ``None`` if one is not known yet."""
        hot = [m.agent_id for m, _at in telemetry if self._hotter(m)]
        if any(agent_id not in self.sites for agent_id in hot):
            return None
        return {self.sites[agent_id] for agent_id in hot}

    def _hotter(self, message: Telemetry) -> bool:
        return level_for(message.temperature_c, message.throttled, self.config) > self.levels.get(message.agent_id, 0)

    def _decide(self, snapshot: FleetSnapshot, now: datetime) -> dict[str, Decision]:
        """``assign`` for the fleet; if it raises, site by site, leaving out the agents it raises for."""
        try:
            return assign(snapshot, self.config, now)
        except Exception as exc:
            self.policy_errors += 1
            log.error("policy failed for the fleet (%s: %s): deciding site by site", type(exc).__name__, exc)
        by_site: dict[str, list[AgentView]] = defaultdict(list)
        for agent in snapshot.agents:
            by_site[agent.site].append(agent)
        decisions: dict[str, Decision] = {}
        for site, agents in sorted(by_site.items()):
            try:
                decisions |= assign(replace(snapshot, agents=tuple(agents)), self.config, now)
                continue
            except Exception:
                pass
            fine = [agent for agent in agents if self._decidable(snapshot, agent, now)]
            try:
                decisions |= assign(replace(snapshot, agents=tuple(fine)), self.config, now)
            except Exception as exc:
                log.error("policy failed for site %r even without its failing agents: %s", site, exc)
        return decisions

    def _decidable(self, snapshot: FleetSnapshot, agent: AgentView, now: datetime) -> bool:
        try:
            assign(replace(snapshot, agents=(agent,)), self.config, now)
        except Exception as exc:
            log.error(
                "policy failed for agent %s (%s: %s): it keeps its last assignment",
                agent.agent_id,
                type(exc).__name__,
                exc,
            )
            return False
        return True

    def tick(self, now: datetime, sites: set[str] | None = None) -> TickResult:
        """Decide for the whole fleet, or only for ``sites`` (sites are independent in the policy)."""
        started = time.perf_counter()
        with Session(self.engine, expire_on_commit=False) as session:
            offline: list[str] = []
            if sites is None:
                cutoff = now - timedelta(seconds=self.config.offline_after_s)
                offline = mark_stale_offline(session, cutoff=cutoff, now=now)
                self.live_controllers = heartbeat(
                    session, self.controller_id, now=now, started_at=self.started_at, ttl_s=self.heartbeat_ttl_s
                )
            published: list[CurrentAssignment] = []
            for attempt in range(CONFLICT_RETRIES):
                everything = load_fleet(session, sites)
                rows = everything if sites is not None else self._my_share(everything)
                snapshot = build_snapshot(rows)
                decisions = self._decide(snapshot, now)
                floors = {agent.id: agent.assignment_version for agent in rows.agents}
                proposals = [
                    Proposal(agent_id, decision, floors.get(agent_id, 0), _version(rows.current.get(agent_id)))
                    for agent_id, decision in decisions.items()
                    if agent_id not in rows.current
                    or settings_of(rows.current[agent_id]) != decision.settings
                    or state_of(rows.current[agent_id]) != decision.state
                ]
                try:
                    published = commit_decisions(session, proposals, controller_id=self.controller_id, now=now)
                    break
                except VersionConflict as exc:
                    self.conflicts += 1
                    log.info("tick: %s (attempt %d), reloading", exc, attempt + 1)
            else:
                log.warning("tick: gave up after %d version conflicts", CONFLICT_RETRIES)
        current = {**rows.current, **{row.agent_id: row for row in published}}
        live_ids = {a.agent_id for a in snapshot.agents if a.agent_id in decisions and is_live(a, self.config, now)}
        if self.republish_all and sites is None:
            self.republish_all = False
            published = [current[i] for i in sorted(live_ids) if i in current]
        for row in published:
            self.publish(self._to_message(row))
        self.published_total += len(published)
        concurrency = {i: r.concurrency for i, r in current.items()}
        levels = {i: d.state.thermal_level for i, d in decisions.items()}
        if sites is None:  # what the other controllers decided, as stored, then ours
            stored = everything.current
            self.concurrency = {**{i: r.concurrency for i, r in stored.items()}, **concurrency}
            self.levels = {**{i: r.thermal_level for i, r in stored.items()}, **levels}
            self.sites = {agent.id: agent.site for agent in everything.agents}
        else:  # copy, then swap: readers in other threads always see a whole dict
            self.concurrency, self.levels = {**self.concurrency, **concurrency}, {**self.levels, **levels}
        return TickResult(len(live_ids), len(published), len(offline), time.perf_counter() - started)
