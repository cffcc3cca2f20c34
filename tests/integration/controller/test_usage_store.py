"""Metered links in the store (SQLite and PostgreSQL): counter growth per hour, read back per month and day,
and through the tick's usage reader into the policy's view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controller.policy import AgentView, FleetView, PolicyConfig, assign
from controller.policy.budget import SiteBudget, Usage
from controller.service.fleet_view import build_fleet_view
from controller.service.usage import UsageReader
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch
from controller.store.assignments import load_fleet
from controller.store.models import Agent
from controller.store.usage import Metered, load_usage, metered_usage, prune_usage
from fleet_protocol.messages import Telemetry

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 10, 22, 30, tzinfo=UTC)
MB, GB = 10**6, 10**9


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


def decide(engine: Engine, config: PolicyConfig, reader: UsageReader, now: datetime) -> dict[str, tuple[bool, str]]:
    """The controller's path from the tables to the policy: fleet rows, overrides, usage, ``assign``."""
    with Session(engine) as session:
        fleet = reader.attach(session, build_fleet_view(load_fleet(session)), now)
    return {key: (d.settings.paused, d.reason) for key, d in assign(fleet, config, now).items()}


def test_an_operator_budget_override_releases_and_sets_the_hold(engine: Engine) -> None:
    """A spent budget holds the site; the operator raises it (the dashboard's write: ``repo.set_override``) and
    the next decision releases the hold; an agent's own daily cap holds that agent; clearing restores the config."""
    for agent_id in ("a", "b"):
        message = Telemetry(agent_id=agent_id, seq=0, sent_at=T0, bytes_uploaded_total=600 * MB, backlog_bytes=GB)
        with Session(engine) as session:
            write_batch(session, IngestBatch(telemetry=[(message, T0)]), skew=timedelta(days=365))
            session.execute(Agent.__table__.update().where(Agent.__table__.c.id == agent_id).values(site="north"))  # type: ignore[attr-defined]
            session.commit()
    config = PolicyConfig(site_budgets={"north": SiteBudget(monthly_bytes=GB)})
    reader = UsageReader(config)
    now = T0 + timedelta(seconds=1)
    held = decide(engine, config, reader, now)
    assert held["a"][0]
    assert held["b"][0]
    assert "monthly budget of site north spent: 1.20 GB of 1.00 GB" in held["a"][1]

    with Session(engine) as session:
        repo.set_override(session, who="olga", site="north", monthly_budget_bytes=30 * GB)
        repo.set_override(session, who="olga", agent_id="b", daily_cap_bytes=GB // 2)
        assert [(e.target, e.detail) for e in repo.list_audit(session)][::-1] == [
            ("site:north", {"monthly_budget_bytes": 30 * GB}),
            ("agent:b", {"daily_cap_bytes": GB // 2}),
        ]
        plan = metered_usage(session, config, now).sites["north"]
        assert (plan.budget.monthly_bytes, plan.used_month, plan.held) == (30 * GB, 1200 * MB, False)
    released = decide(engine, config, reader, now + timedelta(seconds=reader.refresh_s))
    assert not released["a"][0]
    assert "operator olga: monthly budget 30.00 GB" in released["a"][1]
    assert released["b"][0]  # its own cap: 0.6 GB sent today of 0.5 GB
    assert "daily cap of the agent spent: 0.60 GB of 0.50 GB" in released["b"][1]

    with Session(engine) as session:
        repo.clear_override(session, who="olga", site="north")
        repo.clear_override(session, who="olga", agent_id="b")
    again = decide(engine, config, reader, now + timedelta(seconds=2 * reader.refresh_s))
    assert again["a"][0]
    assert again["b"][0]


def test_an_override_meters_a_site_the_config_does_not(engine: Engine) -> None:
    report(engine, ("a", 700, T0))
    config = PolicyConfig()
    with Session(engine) as session:
        repo.set_override(session, who="olga", site="", monthly_budget_bytes=500)
        metered = metered_usage(session, config, T0)
    assert metered.agents == {"a": Usage(700, 700)}
    assert metered.sites[""].month_spent
    assert decide(engine, config, UsageReader(config), T0)["a"][0]
    with Session(engine) as session, pytest.raises(ValueError, match="belongs to a site"):
        repo.set_override(session, who="olga", agent_id="a", monthly_budget_bytes=500)
