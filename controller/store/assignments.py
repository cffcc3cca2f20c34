"""Assignment versions: stored before they are published, so no version is ever used twice.

The guard is in the database: ``assignment_history`` is unique on (agent_id, version) and the
``current_assignment`` row of an agent is read ``FOR UPDATE`` (PostgreSQL) before its next version is
chosen. Two controllers deciding for the same agent at the same time therefore serialise; if both
create an agent's first row, one gets an ``IntegrityError`` and ``VersionConflict`` tells it to
reload and try again. A new version is also above the version the agent reports applying, so a
fresh database never hands out a number the agent has already seen. A proposal carries the version
it was decided on; if the stored one has moved on since, the proposal is stale and skipped (the next
tick decides again on fresh data), so a slow full tick cannot undo what a fast one just published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from controller.policy import Decision, PolicyState
from controller.store.database import as_utc, to_db_time
from controller.store.models import Agent, AssignmentHistory, CurrentAssignment, OperatorOverride
from controller.store.tables import AGENT, CURRENT, column
from fleet_protocol.assignment import SETTINGS_FIELDS, AssignmentSettings


class VersionConflict(RuntimeError):
    """Another controller wrote an assignment for the same agent at the same time: reload and retry."""


@dataclass(frozen=True)
class Proposal:
    agent_id: str
    decision: Decision
    floor_version: int = 0  # the version the agent reports applying
    based_on: int | None = None  # the version in force when decided (None: none yet); stale → skipped


# -- the one conversion between a stored assignment row and ``AssignmentSettings`` (columns = field names) ----
def settings_of(row: Any) -> AssignmentSettings:
    """The settings of a stored assignment: a ``CurrentAssignment``/``AssignmentHistory`` or a Core row of one.

    Rows are written from valid settings only; a row stored before the protocol bounded its numbers comes back
    fitted (``AssignmentSettings.fit``), which is what its agent is sent and the dashboard shows."""
    values = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    values["windows"] = values["windows"] or ()
    return AssignmentSettings.fit(**values)


def settings_columns(settings: AssignmentSettings) -> dict[str, Any]:
    """The columns of an assignment row that hold ``settings``."""
    return settings.as_dict()


def state_of(row: CurrentAssignment) -> PolicyState:
    return PolicyState(
        thermal_level=row.thermal_level, cool_since=as_utc(row.cool_since), window_widened=row.window_widened
    )


def _state_values(state: PolicyState) -> dict[str, Any]:
    return {
        "thermal_level": state.thermal_level,
        "cool_since": None if state.cool_since is None else to_db_time(state.cool_since),
        "window_widened": state.window_widened,
    }


def _assignment_values(agent_id: str, decision: Decision, version: int, at: datetime, ctl: str) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "version": version,
        **settings_columns(decision.settings),
        "reason": decision.reason,
        "at": to_db_time(at),
        "controller_id": ctl,
    }


def commit_decisions(
    session: Session, proposals: Iterable[Proposal], *, controller_id: str, now: datetime
) -> list[CurrentAssignment]:
    """Store changed assignments (new versions) and changed policy state; return what to publish.

    Commits. Raises ``VersionConflict`` (after a rollback) when another controller raced us.
    """
    wanted = {p.agent_id: p for p in proposals}
    if not wanted:
        return []
    query = (
        select(CurrentAssignment)
        .where(col(CurrentAssignment.agent_id).in_(sorted(wanted)))
        .order_by(col(CurrentAssignment.agent_id))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    current = {row.agent_id: row for row in session.scalars(query)}
    published: list[CurrentAssignment] = []
    for agent_id, proposal in sorted(wanted.items()):
        row = current.get(agent_id)
        if (row.version if row is not None else None) != proposal.based_on:
            continue  # decided on an older state (another tick or controller got there first)
        state = _state_values(proposal.decision.state)
        if row is not None and settings_of(row) == proposal.decision.settings:
            if state_of(row) != proposal.decision.state:
                for name, value in state.items():
                    setattr(row, name, value)
                session.add(row)
            continue
        version = max(row.version if row is not None else 0, proposal.floor_version) + 1
        values = _assignment_values(agent_id, proposal.decision, version, now, controller_id)
        session.add(AssignmentHistory(**values))
        if row is None:
            row = CurrentAssignment(**values, **state)
        else:
            for name, value in {**values, **state}.items():
                setattr(row, name, value)
        session.add(row)
        published.append(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise VersionConflict(f"assignment version conflict: {exc.orig}") from None
    return published


class PolicyAgentRow(Protocol):
    """What the policy reads of an agent: these columns of ``agent``, read with a plain Core select (no ORM objects
    for thousands of rows). mypy checks below that ``Agent`` has every one, with the same type."""

    id: str
    site: str
    online: bool
    cores: int
    ram_bytes: int
    memory_limit_bytes: int
    baseline_rss_bytes: int
    encode_cores: float
    encode_bps_by_level: list[float]
    compression_ratio_by_level: list[float]
    telemetry_at: datetime | None
    temperature_c: float | None
    throttled: int
    cpu_percent: float
    backlog_files: int
    backlog_bytes: int
    backlog_oldest_age_s: float
    active_uploads: int
    throughput_bps: float
    errors_total: int
    assignment_version: int


if TYPE_CHECKING:

    def _agent_has_the_policy_columns(agent: Agent) -> PolicyAgentRow:
        return agent


POLICY_COLUMNS = tuple(AGENT.c[name] for name in PolicyAgentRow.__annotations__)


@dataclass(frozen=True)
class FleetRows:
    """``agents``: Core rows of the ``PolicyAgentRow`` columns; ``current``: the ``current_assignment`` rows, Core
    rows or ``CurrentAssignment`` objects (both read the same; never written through)."""

    agents: list[PolicyAgentRow]
    current: dict[str, CurrentAssignment]
    overrides: list[OperatorOverride]


def load_fleet(session: Session, sites: Iterable[str] | None = None) -> FleetRows:
    """Everything the policy needs (of only ``sites``, if given), read in one go."""
    agent_id, agent_site = column(Agent.id), column(Agent.site)
    agent_query = select(*POLICY_COLUMNS).order_by(agent_id)
    current_query = select(CURRENT)
    if sites is not None:
        wanted = sorted(set(sites))
        agent_query = agent_query.where(agent_site.in_(wanted))
        in_sites = select(agent_id).where(agent_site.in_(wanted))
        current_query = current_query.where(column(CurrentAssignment.agent_id).in_(in_sites))
    agents = cast(list[PolicyAgentRow], list(session.execute(agent_query)))
    current = {row.agent_id: cast(CurrentAssignment, row) for row in session.execute(current_query)}
    overrides = list(session.scalars(select(OperatorOverride)))
    session.expunge_all()
    session.commit()
    return FleetRows(agents, current, overrides)
