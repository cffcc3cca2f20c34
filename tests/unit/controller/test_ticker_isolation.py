"""One agent the policy raises for does not stop the decisions for the others (``Ticker._decide``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.policy import AgentView, FleetView, PolicyConfig, TelemetryView
from controller.policy import assign as real_assign
from controller.service import ticker as ticker_module
from controller.service.ticker import Ticker

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def agent(agent_id: str, site: str) -> AgentView:
    telemetry = TelemetryView(at=NOW - timedelta(seconds=1), temperature_c=50.0)
    return AgentView(agent_id=agent_id, site=site, cores=4, ram_bytes=4 << 30, telemetry=telemetry)


def ticker() -> Ticker:
    return Ticker(None, PolicyConfig(), controller_id="ctl-1", publish=lambda _a: None)  # type: ignore[arg-type]


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    """``assign`` raises (as ``int(inf)`` once did) whenever the agent ``poison`` is in its snapshot."""

    def assign(snapshot: FleetView, config: PolicyConfig, now: datetime) -> Any:
        if any(a.agent_id == "poison" for a in snapshot.agents):
            raise OverflowError("cannot convert float infinity to integer")
        return real_assign(snapshot, config, now)

    monkeypatch.setattr(ticker_module, "assign", assign)


@pytest.mark.usefixtures("poisoned")
def test_the_others_are_decided_the_agent_at_fault_is_left_out() -> None:
    agents = (agent("a1", "north"), agent("poison", "north"), agent("a2", "north"), agent("b1", "south"))
    t = ticker()
    decisions = t._decide(FleetView(agents=agents), NOW)
    assert sorted(decisions) == ["a1", "a2", "b1"]
    assert t.policy_errors == 1
    # the rest of its site is still decided together: they share the site's uplink
    shares = [decisions[i].settings.bandwidth_bps for i in ("a1", "a2")]
    assert sum(shares) <= PolicyConfig().site_uplink_bps


@pytest.mark.usefixtures("poisoned")
def test_a_healthy_fleet_is_decided_in_one_run() -> None:
    t = ticker()
    decisions = t._decide(FleetView(agents=(agent("a1", "north"), agent("b1", "south"))), NOW)
    assert sorted(decisions) == ["a1", "b1"]
    assert t.policy_errors == 0
