"""One tick: load → decide (pure) → commit (store) → publish (MQTT), then what is in force, swapped in whole.

    round(now, ...)              the tick thread's round: a full tick when one is due, else a tick of the sites whose
                                 inputs changed (``note``: births, states, cooler readings, unknown agents;
                                 overrides); stale agents go offline at full ticks
    tick(now, sites=None)        a full tick, or only ``sites`` (the hot path: sites are independent in the policy)
     ├── upkeep   full tick only: stale agents → offline; heartbeat (which controllers are alive)
     ├── load     the stored rows (every site, or ``sites``) → this controller's share → ``FleetView``
     ├── decide   ``controller.policy.decide``: ``assign``, one agent's failure isolated; ``changed`` only  [pure]
     ├── commit   new versions stored (``commit_decisions``); a version conflict → load and decide again
     ├── publish  what was committed, retained; after a (re)connect every live agent's current assignment
     └── refresh  ``in_force``: concurrency, thermal level and site per agent, for the ingest thread

A full tick is due every ``full_every_s``, at once after a (re)connect, a change of the live controllers, an agent
not seen by the last full tick or a request (``request_full``), and on every round while the last one cost no more
than ``FULL_TICK_BUDGET`` of ``tick_seconds`` (a small fleet: every round is a full tick, as it always was). Between
full ticks a round decides only the changed sites of this controller's share: at 10,000 agents a full tick of
5,000 takes longer than ``tick_seconds``, while a round of the changed sites takes milliseconds. Telemetry that
changes a rate or a backlog (not a thermal step) is taken up by the next full tick.

Only assignments whose operative settings changed get a new version and are published (a reason that only differs
in a temperature's last digit does not churn the fleet). After a (re)connect to the broker every current assignment
of a live agent is published again, same version, so a broker that lost its retained messages gets them back. An
agent the policy raises for keeps its last assignment (logged, counted in ``policy_errors``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from controller.policy import Decision, FleetView, PolicyConfig, is_live
from controller.policy.decide import Decided, PolicyFailure, changed, decide
from controller.service.fleet_view import build_fleet_view
from controller.service.usage import UsageReader
from controller.store.agent_writes import IngestBatch
from controller.store.assignments import (
    FleetRows,
    Proposal,
    VersionConflict,
    commit_decisions,
    load_fleet,
    settings_of,
)
from controller.store.housekeeping import mark_stale_offline
from controller.store.instances import heard_until, heartbeat, sites_for
from controller.store.models import CurrentAssignment, OperatorOverride
from controller.transcoder.jobs import alive_workers
from fleet_plan.thermal import level_for
from fleet_protocol.messages import Assignment, Telemetry

log = logging.getLogger(__name__)
#: a transcoder worker heard from this recently counts as capacity (its default ``alive_after_s``)
TRANSCODER_ALIVE_S = 120.0

CONFLICT_RETRIES = 5
#: a full tick that took at most this share of ``tick_seconds`` runs again on the next round
FULL_TICK_BUDGET = 0.1


@dataclass(frozen=True)
class TickResult:
    live: int
    published: int
    went_offline: int
    seconds: float


@dataclass(frozen=True)
class InForce:
    """Per agent, as of the last tick: the concurrency in force, the thermal level and the site. Read by the
    ingest thread (the concurrency of each sample, the hot path); immutable, so a reader sees one whole tick."""

    concurrency: Mapping[str, int] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)
    sites: Mapping[str, str] = field(default_factory=dict)

    def after(self, done: Round, *, full: bool) -> InForce:
        """What is in force after ``done``: a full tick takes everything stored (the other controllers' sites too)
        and overlays its own; a per-site tick overlays its sites on this."""
        concurrency = {agent_id: row.concurrency for agent_id, row in done.current.items()}
        levels = {agent_id: decision.state.thermal_level for agent_id, decision in done.decisions.items()}
        if not full:
            return InForce({**self.concurrency, **concurrency}, {**self.levels, **levels}, self.sites)
        stored = done.loaded.stored
        return InForce(
            concurrency={**{i: r.concurrency for i, r in stored.current.items()}, **concurrency},
            levels={**{i: r.thermal_level for i, r in stored.current.items()}, **levels},
            sites={agent.id: agent.site for agent in stored.agents},
        )


@dataclass(frozen=True)
class Loaded:
    """What one attempt read: the stored rows (a full tick: every site), this controller's share of them, and the
    share as the policy sees it."""

    stored: FleetRows
    mine: FleetRows
    fleet: FleetView


@dataclass(frozen=True)
class Round:
    """One tick's outcome: what was loaded and decided, and the assignments committed (to publish)."""

    loaded: Loaded
    decisions: Mapping[str, Decision]
    committed: list[CurrentAssignment]

    @property
    def current(self) -> dict[str, CurrentAssignment]:
        """The assignment in force per agent of the share, as committed now or stored before."""
        return {**self.loaded.mine.current, **{row.agent_id: row for row in self.committed}}


class Ticker:
    def __init__(
        self,
        engine: Engine,
        config: PolicyConfig,
        *,
        controller_id: str,
        publish: Callable[[Assignment], None],
        heartbeat_ttl_s: float = 5.0,
        stored_through: Callable[[datetime], datetime] | None = None,
    ) -> None:
        """``stored_through(now)``: this controller's ingest watermark (every message received before it is
        stored; ``Ingestor.stored_through``); None: always ``now`` (nothing is ever pending)."""
        self.engine = engine
        self.stored_through = stored_through or (lambda now: now)
        self.config = config
        self.controller_id = controller_id
        self.publish = publish
        self._seq = itertools.count()
        self.republish_all = False
        self.in_force = InForce()
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.started_at = datetime.now(UTC)
        self.live_controllers: list[str] = [controller_id]
        self.own_sites = 0  # sites this controller ran its last full tick for
        self.conflicts = 0
        self.published_total = 0
        self.policy_errors = 0
        self.usage = UsageReader(config)
        self._changes = _Changes()
        self._share_sites: set[str] = set()
        self._last_full: tuple[float, float] | None = None  # (monotonic start, seconds) of the last full tick
        self._my_sites: set[str] = set()  # this controller's share at the last full tick
        self._override_marks: dict[tuple[str, str], object] = {}
        self.changed_rounds = 0

    # -- what changed (the ingest thread and the dashboard's overrides) ----------------------------
    def note(self, batch: IngestBatch) -> None:
        """What a stored batch changes for the policy: the sites of agents born or changing state, of agents with
        no assignment yet sending telemetry (they become live), and of agents reading cooler than their thermal
        step in force (its cool-down timer starts or runs; a hotter reading is the hot path's); an agent the last
        full tick did not know asks for a full tick. Other changes in telemetry
        (rates, backlog) wait for the next full tick."""
        in_force = self.in_force
        sites, levels = in_force.sites, in_force.levels
        agents = [m.agent_id for m, _at in batch.births] + [m.agent_id for m, _at in batch.states]
        agents += [m.agent_id for m, _at in batch.telemetry if m.agent_id not in levels or self._cooler(m, levels)]
        self._changes.add({sites[a] for a in agents if a in sites}, full=any(a not in sites for a in agents))

    def _cooler(self, message: Telemetry, levels: Mapping[str, int]) -> bool:
        return level_for(message.temperature_c, message.throttled, self.config) < levels.get(message.agent_id, 0)

    def request_full(self) -> None:
        """The next round is a full tick (tests, a reconnect, a failed hot path)."""
        self._changes.add(set(), full=True)

    def round(self, now: datetime, *, tick_seconds: float, full_every_s: float) -> TickResult:
        """The tick thread's round: a full tick when due (module docstring), else the changed sites of the share."""
        started = time.monotonic()
        if self._full_due(started, tick_seconds, full_every_s):
            self._changes.take()
            live_before = list(self.live_controllers)
            result = self.tick(now)
            self._last_full = (started, result.seconds)
            self._my_sites = set(self._share_sites)
            if self.live_controllers != live_before:
                self.request_full()  # the share moved: the next round deals it again
            return result
        return self._tick_changed(now)

    def _full_due(self, now: float, tick_seconds: float, full_every_s: float) -> bool:
        if full_every_s <= 0 or self._last_full is None or self.republish_all or self._changes.full:
            return True
        at, seconds = self._last_full
        return seconds <= FULL_TICK_BUDGET * tick_seconds or now - at >= full_every_s

    def _tick_changed(self, now: datetime) -> TickResult:
        started = time.perf_counter()
        live_before = list(self.live_controllers)
        with Session(self.engine, expire_on_commit=False) as session:
            # the heartbeat only: marking stale agents offline is an UPDATE over the agent table that collides
            # with the ingest's writes (deadlocks at 10,000 agents on PostgreSQL): full ticks do it
            self.live_controllers = self._heartbeat(session, now)
            overridden = self._overrides_changed(list(session.scalars(select(OperatorOverride))))
        if self.live_controllers != live_before:
            self.request_full()
        sites, full = self._changes.take()
        sites |= overridden
        if full:
            self.request_full()
        mine = sites & self._my_sites
        self.changed_rounds += 1
        if not mine:
            return TickResult(0, 0, 0, time.perf_counter() - started)
        done = self.tick(now, sites=mine)
        return TickResult(done.live, done.published, 0, time.perf_counter() - started)

    def _overrides_changed(self, overrides: list[OperatorOverride]) -> set[str]:
        """The sites whose overrides (their own or their agents') were set, changed or cleared since the last look;
        an agent override of an agent the last full tick did not know asks for a full tick."""
        marks = _marks(overrides)
        touched = {
            key for key in marks.keys() | self._override_marks.keys() if marks.get(key) != self._override_marks.get(key)
        }
        self._override_marks = marks
        sites = self.in_force.sites
        unknown = any(scope == "agent" and target not in sites for scope, target in touched)
        if unknown:
            self.request_full()
        return {
            target if scope == "site" else sites[target]
            for scope, target in touched
            if scope == "site" or target in sites
        }

    # -- for the ingest thread ---------------------------------------------------------------------
    def needs_fast_tick(self, telemetry: list[tuple[Telemetry, datetime]]) -> bool:
        """A reading that asks for a higher thermal level than in force: react now, not next tick."""
        levels = self.in_force.levels
        return any(self._hotter(m, levels) for m, _at in telemetry)

    def hot_sites(self, telemetry: list[tuple[Telemetry, datetime]]) -> set[str] | None:
        """Sites of agents whose reading asks for a hotter level; ``None`` if one is not known yet."""
        in_force = self.in_force
        hot = [m.agent_id for m, _at in telemetry if self._hotter(m, in_force.levels)]
        if any(agent_id not in in_force.sites for agent_id in hot):
            return None
        return {in_force.sites[agent_id] for agent_id in hot}

    def _hotter(self, message: Telemetry, levels: Mapping[str, int]) -> bool:
        return level_for(message.temperature_c, message.throttled, self.config) > levels.get(message.agent_id, 0)

    # -- the tick ----------------------------------------------------------------------------------
    def tick(self, now: datetime, sites: set[str] | None = None) -> TickResult:
        """Decide for the whole fleet, or only for ``sites`` (sites are independent in the policy)."""
        started = time.perf_counter()
        full = sites is None
        with Session(self.engine, expire_on_commit=False) as session:
            offline = self._upkeep(session, now) if full else []
            done = self._decide_and_commit(session, now, sites)
        live = self._live(done, now)
        published = self._publish(done, live, full=full)
        self.in_force = self.in_force.after(done, full=full)
        if full:
            self._override_marks = _marks(done.loaded.stored.overrides)
        return TickResult(len(live), published, len(offline), time.perf_counter() - started)

    def _upkeep(self, session: Session, now: datetime) -> list[str]:
        """This controller's heartbeat (who else is alive), then stale agents offline (returned).

        Silence is measured against what is stored, not the wall clock: an agent is stale when nothing of it
        was stored for ``offline_after_s`` before the earliest watermark of the live controllers (every message
        received before it is stored). A controller whose ingest is a minute behind (a database stall) then
        does not mark the fleet offline, and reassign it when its messages land."""
        self.live_controllers = self._heartbeat(session, now)
        watermark = heard_until(session, self.live_controllers, now)
        if now - watermark > timedelta(seconds=1):
            log.info("ingest stored through %.1f s ago: silence measured from there", (now - watermark).total_seconds())
        cutoff = watermark - timedelta(seconds=self.config.offline_after_s)
        return mark_stale_offline(session, cutoff=cutoff, now=now)

    def _heartbeat(self, session: Session, now: datetime) -> list[str]:
        return heartbeat(
            session,
            self.controller_id,
            now=now,
            started_at=self.started_at,
            ttl_s=self.heartbeat_ttl_s,
            stored_through=self.stored_through(now),
        )

    def _decide_and_commit(self, session: Session, now: datetime, sites: set[str] | None) -> Round:
        """Load, decide, commit; another controller's version in between → load and decide again."""
        for attempt in range(1, CONFLICT_RETRIES + 1):
            loaded = self._load(session, sites, now)
            decisions = self._decide(loaded.fleet, now)
            try:
                return Round(loaded, decisions, self._commit(session, loaded, decisions, now))
            except VersionConflict as exc:
                self.conflicts += 1
                log.info("tick: %s (attempt %d), reloading", exc, attempt)
        log.warning("tick: gave up after %d version conflicts", CONFLICT_RETRIES)
        return Round(loaded, decisions, [])

    def _load(self, session: Session, sites: set[str] | None, now: datetime) -> Loaded:
        stored = load_fleet(session, sites)
        mine = stored if sites is not None else self._my_share(stored)
        transcoders = alive_workers(session, now, TRANSCODER_ALIVE_S)
        return Loaded(stored, mine, self.usage.attach(session, build_fleet_view(mine, transcoders), now))

    def _my_share(self, rows: FleetRows) -> FleetRows:
        """With several live controllers, only the sites dealt to this one (``instances.sites_for``)."""
        sites = {agent.site for agent in rows.agents}
        if len(self.live_controllers) <= 1:
            self.own_sites = len(sites)
            self._share_sites = sites
            return rows
        mine = sites_for(self.controller_id, self.live_controllers, sites)
        self.own_sites = len(mine)
        self._share_sites = mine
        agents = [agent for agent in rows.agents if agent.site in mine]
        ids = {agent.id for agent in agents}
        return FleetRows(agents, {i: r for i, r in rows.current.items() if i in ids}, rows.overrides)

    def _decide(self, fleet: FleetView, now: datetime) -> Mapping[str, Decision]:
        decided: Decided = decide(fleet, self.config, now)
        if decided.failures:
            self.policy_errors += 1
        for failure in decided.failures:
            _log_failure(failure)
        return decided.decisions

    def _commit(
        self, session: Session, loaded: Loaded, decisions: Mapping[str, Decision], now: datetime
    ) -> list[CurrentAssignment]:
        """Store the decisions that changed, each on the version it was decided on; returns what to publish."""
        floors = {agent.id: agent.assignment_version for agent in loaded.mine.agents}
        current = loaded.mine.current
        proposals = [
            Proposal(agent_id, decision, floors.get(agent_id, 0), _version(current.get(agent_id)))
            for agent_id, decision in changed(loaded.fleet, decisions).items()
        ]
        return commit_decisions(session, proposals, controller_id=self.controller_id, now=now)

    def _live(self, done: Round, now: datetime) -> set[str]:
        return {
            agent.agent_id
            for agent in done.loaded.fleet.agents
            if agent.agent_id in done.decisions and is_live(agent, self.config, now)
        }

    def _publish(self, done: Round, live: set[str], *, full: bool) -> int:
        """Publish what was committed; after a reconnect (full tick) every live agent's current assignment."""
        rows = done.committed
        if self.republish_all and full:
            self.republish_all = False
            current = done.current
            rows = [current[agent_id] for agent_id in sorted(live) if agent_id in current]
        for row in rows:
            self.publish(self._to_message(row))
        self.published_total += len(rows)
        return len(rows)

    def _to_message(self, row: CurrentAssignment) -> Assignment:
        return Assignment.of(
            settings_of(row), agent_id=row.agent_id, seq=next(self._seq), version=row.version, reason=row.reason
        )


def _marks(overrides: list[OperatorOverride]) -> dict[tuple[str, str], object]:
    return {(o.scope, o.target): o.updated_at for o in overrides}


class _Changes:
    """Sites whose inputs changed, and whether a full tick was asked for: written by the ingest thread, taken by
    the tick thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sites: set[str] = set()
        self.full = False

    def add(self, sites: set[str], *, full: bool) -> None:
        with self._lock:
            self._sites |= sites
            self.full = self.full or full

    def take(self) -> tuple[set[str], bool]:
        with self._lock:
            taken = self._sites, self.full
            self._sites, self.full = set(), False
            return taken


def _version(row: CurrentAssignment | None) -> int | None:
    return None if row is None else row.version


def _log_failure(failure: PolicyFailure) -> None:
    error, kind = failure.error, type(failure.error).__name__
    if failure.scope == "fleet":
        log.error("policy failed for the fleet (%s: %s): deciding site by site", kind, error)
    elif failure.scope == "agent":
        log.error("policy failed for agent %s (%s: %s): it keeps its last assignment", failure.name, kind, error)
    else:
        log.error("policy failed for site %r even without its failing agents: %s", failure.name, error)
