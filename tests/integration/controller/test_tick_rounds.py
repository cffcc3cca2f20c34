"""The tick thread's rounds (``Ticker.round``) on a real database: a full tick first and when asked for; between
full ticks only the sites whose inputs changed are decided (an override, a state change), nothing when nothing
changed; an agent the last full tick did not know asks for a full tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from controller.config import parse_config
from controller.service.ticker import Ticker
from controller.store import repo
from controller.store.agent_writes import IngestBatch
from controller.store.database import make_engine
from controller.store.models import Agent
from controller.store.schema import migrate
from fleet_protocol.messages import Assignment, State, Telemetry
from fleet_protocol.vocabulary import AgentStatus

pytestmark = pytest.mark.integration

AGENTS = {"pi-a1": "north", "pi-a2": "north", "pi-b1": "south", "pi-b2": "south"}
EXPENSIVE = 1e-9  # a tick_seconds every full tick costs more than a tenth of: rounds between full ticks
NEVER = 3600.0


def test_rounds_decide_only_what_changed(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        for agent_id, site in AGENTS.items():
            at = now + timedelta(hours=1)  # live for the whole test
            session.add(Agent(id=agent_id, site=site, online=True, last_seen=at, telemetry_at=at, temperature_c=50.0))
        session.commit()
    config = parse_config({"database_url": database_url, "mqtt": {"url": "mqtt://u:p@127.0.0.1:1"}}, env={})
    published: list[Assignment] = []
    ticker = Ticker(engine, config.policy_config(), controller_id="ctl-1", publish=published.append)

    def round_() -> int:
        before = len(published)
        ticker.round(datetime.now(UTC), tick_seconds=EXPENSIVE, full_every_s=NEVER)
        return len(published) - before

    assert round_() == 4  # the first round is a full tick: every agent's first assignment
    assert ticker.changed_rounds == 0

    assert (round_(), ticker.changed_rounds) == (0, 1)  # nothing changed: nothing decided

    with Session(engine) as session:
        repo.set_override(session, who="test", site="north", paused=True)
    assert round_() == 2
    assert {a.agent_id for a in published[-2:]} == {"pi-a1", "pi-a2"}
    assert all(a.paused for a in published[-2:])
    assert ticker.changed_rounds == 2

    ticker.note(IngestBatch(states=[(State(agent_id="pi-b1", seq=1, state=AgentStatus.ONLINE), now)]))
    result = ticker.round(datetime.now(UTC), tick_seconds=EXPENSIVE, full_every_s=NEVER)
    assert (result.live, result.published, ticker.changed_rounds) == (2, 0, 3)  # south decided, unchanged

    ticker.note(IngestBatch(telemetry=[(Telemetry(agent_id="pi-new", seq=1, temperature_c=50.0), now)]))
    ticker.round(datetime.now(UTC), tick_seconds=EXPENSIVE, full_every_s=NEVER)
    assert ticker.changed_rounds == 3  # an unknown agent: a full tick

    ticker.request_full()
    ticker.round(datetime.now(UTC), tick_seconds=EXPENSIVE, full_every_s=NEVER)
    assert ticker.changed_rounds == 3
    ticker.round(datetime.now(UTC), tick_seconds=1.0, full_every_s=NEVER)  # full ticks cheap: every round is one
    ticker.round(datetime.now(UTC), tick_seconds=EXPENSIVE, full_every_s=0)  # 0: rounds off
    assert ticker.changed_rounds == 3
    engine.dispose()
