"""Two controllers, one fleet: MQTT v5 shared subscriptions and one PostgreSQL, no conflicting versions."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from controller.service.app import Controller
from controller.store.models import AssignmentHistory
from edgefleet.localservices import Mosquitto, Postgres
from tests.integration.controller.fakes import FakeAgent
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SETTINGS = ("concurrency", "part_size", "windows", "bandwidth_bps", "compression_level", "paused", "upload_now")


def _has_version(agent: FakeAgent, version: int) -> bool:
    return bool(max(m["version"] for _t, m in agent.received) == version)


def test_two_controllers_share_the_fleet_without_version_conflicts(
    postgres: Postgres,
    start_controller: Callable[..., Controller],
    make_agent: Callable[..., FakeAgent],
    mqtt_broker_factory: Callable[[], Mosquitto],
) -> None:
    # A private broker: retained births other tests left on the shared one would add their sites to the split.
    broker = mqtt_broker_factory()
    url = postgres.create_database()
    run = uuid.uuid4().hex[:6]
    sites = {f"pi-{run}-{i:02d}": f"site-{i % 4}" for i in range(12)}  # provisioning, as Ansible renders it
    # each controller connection logs in with its own broker user (the broker ties client ids to user names)
    a = start_controller(url, controller_id="ctl-a", shared_group="controllers", broker=broker, agent_sites=sites)
    b = start_controller(url, controller_id="ctl-b", shared_group="controllers", broker=broker, agent_sites=sites)
    telemetry_users = [c.link.telemetry_url.username for c in (a, b) if c.link.telemetry_url is not None]
    assert len({a.link.client_id, b.link.client_id, *telemetry_users}) == 4
    agents = [make_agent(agent_id, site="elsewhere", broker=broker).connect() for agent_id in sites]
    for agent in agents:
        agent.telemetry(50.0)
    for agent in agents:
        agent.next_assignment()
    # Heat and cool every agent a few times, quickly, so both controllers ingest and decide at once.
    for round_ in range(6):
        for i, agent in enumerate(agents):
            agent.telemetry(85.0 if (round_ + i) % 2 == 0 else 50.0)
        time.sleep(0.3)
    for agent in agents:
        agent.telemetry(85.0)
    for agent in agents:
        agent.next_assignment(where=lambda m: m["paused"])

    # the full ticks are split by site between the two live controllers (read after a whole tick of each:
    # a tick updates the live list before it recomputes its own share)
    wait_for(
        lambda: (
            a.ticker.live_controllers == b.ticker.live_controllers == ["ctl-a", "ctl-b"]
            and a.ticker.own_sites > 0
            and b.ticker.own_sites > 0
            and a.ticker.own_sites + b.ticker.own_sites == 4
        ),
        timeout=10,
        what=lambda: (
            f"the four sites split between ctl-a and ctl-b: live {a.ticker.live_controllers} / "
            f"{b.ticker.live_controllers}, own sites {a.ticker.own_sites} / {b.ticker.own_sites}"
        ),
    )
    assert a.ingestor.stats.received > 0, "shared subscription: ctl-a got nothing"
    assert b.ingestor.stats.received > 0, "shared subscription: ctl-b got nothing"
    total = a.ingestor.stats.received + b.ingestor.stats.received
    assert total < 2 * (12 * 8 + 12 * 2) * 0.9, "both controllers got every message: not shared"

    with Session(a.engine) as session:
        history = AssignmentHistory.__table__  # type: ignore[attr-defined]
        rows = session.execute(
            select(
                history.c.agent_id,
                func.count(),
                func.count(func.distinct(history.c.version)),
                func.max(history.c.version),
            ).group_by(history.c.agent_id)
        ).all()
    assert len(rows) == len(agents)
    for agent_id, count, distinct, highest in rows:
        assert count == distinct == highest, (agent_id, count, distinct, highest)
    highest_stored = {agent_id: highest for agent_id, _c, _d, highest in rows}

    for agent in agents:
        by_version: dict[int, set[str]] = defaultdict(set)
        for _at, message in agent.received:
            by_version[message["version"]].add(json.dumps({k: message[k] for k in SETTINGS}, sort_keys=True))
        assert all(len(contents) == 1 for contents in by_version.values()), (agent.agent_id, by_version)
        # the newest stored version is the one the agent ends up with
        wait_for(partial(_has_version, agent, highest_stored[agent.agent_id]), what="the newest version")
    print("version conflicts resolved by retry:", a.ticker.conflicts + b.ticker.conflicts)
    # one leaves cleanly: the other takes over every site
    b.stop()
    wait_for(lambda: a.ticker.own_sites == 4, timeout=60, what="ctl-a ticks all sites")
    agents[0].telemetry(50.0)
    agents[0].telemetry(86.0)  # still paused, but the fleet is handled by ctl-a alone now
    assert a.ticker.live_controllers == ["ctl-a"]
