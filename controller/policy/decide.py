"""The tick's decide step: the fleet's view + config + now → decisions, whatever one agent's values do to the policy.

``assign`` decides for the whole fleet at once. One agent's values must not stop the decisions for the others: if
``assign`` raises for the fleet, ``decide`` runs it again site by site (sites are independent in the policy:
everything is per agent except a site's bandwidth share); in a site that still fails, the agents whose own decision
raises are left out and the rest of the site is decided together. They keep their last assignment. What failed is
returned, not logged (no I/O here): the caller logs and counts it.

``changed`` keeps the decisions that differ from what is in force (operative settings or policy state): only those
are stored. A reason that differs in a temperature's last digit alone is no change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from controller.policy.assign import assign
from controller.policy.inputs import AgentView, Decision, FleetView, PolicyConfig

#: ``assign``'s signature (a seam for tests)
Policy = Callable[[FleetView, PolicyConfig, datetime], dict[str, Decision]]


@dataclass(frozen=True)
class PolicyFailure:
    """``assign`` raised ``error`` for the whole fleet, for a site (``name``) even without its failing agents, or
    for one agent (``name``)."""

    scope: Literal["fleet", "site", "agent"]
    name: str
    error: Exception


@dataclass(frozen=True)
class Decided:
    decisions: Mapping[str, Decision]
    #: in the order they happened; empty when the fleet was decided in one run
    failures: tuple[PolicyFailure, ...] = field(default=())


def decide(fleet: FleetView, config: PolicyConfig, now: datetime, *, policy: Policy = assign) -> Decided:
    """``policy`` for the fleet; if it raises, site by site, leaving out the agents it raises for."""
    try:
        return Decided(policy(fleet, config, now))
    except Exception as exc:
        failures = [PolicyFailure("fleet", "", exc)]
    decisions: dict[str, Decision] = {}
    for site, agents in _by_site(fleet.agents):
        site_decisions, site_failures = _decide_site(fleet, site, agents, config, now, policy)
        decisions |= site_decisions
        failures += site_failures
    return Decided(decisions, tuple(failures))


def changed(fleet: FleetView, decisions: Mapping[str, Decision]) -> dict[str, Decision]:
    """The decisions for agents with no assignment yet, other settings than in force or another policy state."""
    return {
        agent.agent_id: decision
        for agent in fleet.agents
        if (decision := decisions.get(agent.agent_id)) is not None
        and (agent.previous != decision.settings or agent.state != decision.state)
    }


def _by_site(agents: Iterable[AgentView]) -> list[tuple[str, list[AgentView]]]:
    by_site: dict[str, list[AgentView]] = defaultdict(list)
    for agent in agents:
        by_site[agent.site].append(agent)
    return sorted(by_site.items())


def _decide_site(
    fleet: FleetView, site: str, agents: list[AgentView], config: PolicyConfig, now: datetime, policy: Policy
) -> tuple[dict[str, Decision], list[PolicyFailure]]:
    try:
        return policy(replace(fleet, agents=tuple(agents)), config, now), []
    except Exception:  # find the agents at fault
        pass
    failures = [f for agent in agents if (f := _failure(fleet, agent, config, now, policy)) is not None]
    failed = {f.name for f in failures}
    fine = tuple(agent for agent in agents if agent.agent_id not in failed)
    try:
        return policy(replace(fleet, agents=fine), config, now), failures
    except Exception as exc:
        return {}, [*failures, PolicyFailure("site", site, exc)]


def _failure(
    fleet: FleetView, agent: AgentView, config: PolicyConfig, now: datetime, policy: Policy
) -> PolicyFailure | None:
    try:
        policy(replace(fleet, agents=(agent,)), config, now)
    except Exception as exc:
        return PolicyFailure("agent", agent.agent_id, exc)
    return None
