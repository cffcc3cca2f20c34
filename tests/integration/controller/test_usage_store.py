"""Metered links in the store (SQLite and PostgreSQL): counter growth per hour, read back per month and day,
and through the tick's usage reader into the policy's view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controller.policy import AgentView, FleetView, PolicyConfig
from controller.policy.budget import SiteBudget, Usage
from controller.service.usage import UsageReader
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch
from controller.store.models import Agent
from controller.store.usage import Metered, load_usage, metered_usage, prune_usage
from fleet_protocol.messages import Telemetry

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 10, 22, 30, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = repo.make_engine(database_url)
    repo.create_all(engine)
    yield engine
    engine.dispose()


def report(engine: Engine, *readings: tuple[str, int, datetime]) -> None:
    """Telemetry ``(agent, bytes_uploaded_total, sent_at)``, each written in its own batch, received when sent."""
    for seq, (agent_id, counter, at) in enumerate(readings):
        message = Telemetry(agent_id=agent_id, seq=seq, sent_at=at, bytes_uploaded_total=counter)
        with Session(engine) as session:
            write_batch(session, IngestBatch(telemetry=[(message, at)]), skew=timedelta(days=365))


def test_counter_growth_is_counted_once_per_hour_restarts_and_reordering_included(engine: Engine) -> None:
    report(
        engine,
        ("a", 100, T0),  # a new agent: its whole counter
        ("a", 100, T0),  # the same reading again: nothing
        ("a", 250, T0 + timedelta(minutes=10)),  # +150
        ("a", 200, T0 + timedelta(minutes=5)),  # older than stored (reordered): not counted
        ("a", 40, T0 + timedelta(minutes=40)),  # restarted (lower): +40, in the next hour
        ("b", 7, T0 + timedelta(hours=2)),  # the next day (Dec 11 from 00:00)
    )
    with Session(engine) as session:
        day_start = datetime(2026, 12, 10, tzinfo=UTC)
        assert load_usage(session, datetime(2026, 12, 1, tzinfo=UTC), day_start) == {
            "a": Usage(290, 290),
            "b": Usage(7, 7),
        }
        assert load_usage(session, datetime(2026, 12, 1, tzinfo=UTC), day_start + timedelta(days=1)) == {
            "a": Usage(290, 0),
            "b": Usage(7, 7),
        }
        assert load_usage(session, T0.replace(minute=0) + timedelta(hours=1), T0) == {
            "a": Usage(40, 40),
            "b": Usage(7, 7),
        }
        assert prune_usage(session, before=T0 + timedelta(minutes=30)) == 1
        assert load_usage(session, T0 - timedelta(days=30), T0)["a"] == Usage(40, 40)


def test_the_usage_reader_fills_the_fleet_view_of_metered_sites_only(engine: Engine) -> None:
    report(engine, ("a", 1000, T0), ("b", 500, T0), ("c", 99, T0))
    config = PolicyConfig(site_budgets={"north": SiteBudget(monthly_bytes=10**9)})
    reader = UsageReader(config)
    fleet = FleetView((AgentView("a", site="north"), AgentView("b", site="north"), AgentView("c", site="south")))
    with Session(engine) as session:
        view = reader.attach(session, fleet, T0)
        assert view.agent_usage == {"a": Usage(1000, 1000), "b": Usage(500, 500)}
        assert view.site_usage == {"north": Usage(1500, 1500)}
        report(engine, ("a", 3000, T0 + timedelta(seconds=1)))
        assert reader.attach(session, fleet, T0 + timedelta(seconds=1)).site_usage == view.site_usage  # cached
        later = T0 + timedelta(seconds=reader.refresh_s)
        assert reader.attach(session, fleet, later).site_usage == {"north": Usage(3500, 3500)}
    assert reader.reads == 2
    assert UsageReader(PolicyConfig()).attach(Session(engine), fleet, T0) is fleet  # nothing metered: no read


def test_metered_usage_plans_the_metered_sites_for_alerts_and_the_dashboard(engine: Engine) -> None:
    report(engine, ("a", 700, T0), ("b", 500, T0))
    with Session(engine) as session:
        session.execute(Agent.__table__.update().where(Agent.__table__.c.id == "a").values(site="north"))  # type: ignore[attr-defined]
        session.commit()
        assert metered_usage(session, PolicyConfig(), T0) == Metered({}, {})  # nothing metered: no read
        config = PolicyConfig(site_budgets={"north": SiteBudget(monthly_bytes=1000)})
        metered = metered_usage(session, config, T0)
    assert metered.agents == {"a": Usage(700, 700)}
    assert list(metered.sites) == ["north"]
    assert metered.sites["north"].used_month == 700
    assert not metered.sites["north"].month_spent
