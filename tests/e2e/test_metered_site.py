"""A metered site end to end: a real agent uploads to the real S3 through the real broker and controller until
its site's (tiny) monthly budget is spent; then the controller holds the queue with the budget's reason, and
the dashboard shows the site's budget spent (docs/controller.md, "Metered links")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import write_wav
from tests.e2e.system import System, wait_for
from tests.waiting import wait_for as wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
AGENT = "pi-lte-01"
SITE = "lte"
BUDGET = 1_000_000


def month_start_day() -> int:
    """A budget month that ends tomorrow (so today may spend all of it), where the calendar allows."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).day
    return tomorrow if tomorrow <= 28 else 1


def test_a_spent_budget_holds_the_queue_and_the_dashboard_shows_it(tmp_path: Path) -> None:
    controller = {
        "agent_sites": {AGENT: SITE},
        "policy": {
            "budget_horizon_s": 10,  # paced: the budget over 10 s at most, so the test does not wait long
            "budget_overhead_fraction": 0,
            "sites": {SITE: {"monthly_budget_bytes": BUDGET, "month_start_day": month_start_day()}},
        },
    }
    # the agent waits for its first assignment (which already knows the budget): nothing goes out unpaced
    agent = {"settle_seconds": 1, "scan_interval_s": 0.5, "telemetry_interval_s": 1, "defaults": {"paused": True}}
    system = System(tmp_path / "fleet", [AGENT], agent, controller)
    try:
        system.start()
        spool = system.spool(AGENT)
        spool.mkdir(parents=True, exist_ok=True)
        names = [write_wav(spool / f"rec-{n}.wav", seconds=20, rate=48_000, seed=n).name for n in range(4)]
        dashboard = system.dashboard()

        def held() -> str | None:
            response = dashboard.get(f"/api/agents/{AGENT}")
            if response.status_code != 200:  # not known yet: its birth has not been stored
                return None
            assignment = response.json()["row"]["assignment"]
            if assignment and assignment["paused"] and "of site lte spent" in assignment["reason"]:
                return str(assignment["reason"])
            return None

        assert wait_for(held, 150), system.log_tails()
        reason = held()
        assert reason is not None
        assert re.search(r"(monthly budget|daily allowance) of site lte spent: \d+\.\d\d GB of 0\.00 GB", reason)
        assert re.search(r"resumes on \d{4}-\d\d-\d\d", reason)
        left = sorted(p.name for p in spool.glob("*.wav"))
        assert left, "the whole queue went out: nothing was held"
        assert set(left) <= set(names)

        def site_when_agent_agrees() -> dict[str, Any] | None:
            """Parts in flight when the hold came still finish and are counted, so two reads apart in time may
            differ until the last one is in: the site's row once the agent's own count reads the same."""
            (row,) = dashboard.get("/api/sites/budgets").json()
            used = dashboard.get(f"/api/agents/{AGENT}/budget").json()
            return dict(row) if used["used_month_bytes"] == row["used_bytes"] else None

        site = wait_until(site_when_agent_agrees, 60, "the site's and the agent's used bytes to agree", interval=0.5)
        assert site["site"] == SITE
        assert site["budget_bytes"] == BUDGET
        assert site["used_bytes"] > 0
        assert site["held"]
        page = dashboard.get("/").text
        assert 'id="budget-lte"' in page
        assert "held:" in page
    finally:
        system.close()
