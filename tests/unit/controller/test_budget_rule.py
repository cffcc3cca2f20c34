"""The metered-site alert rule (pure): a site that spent its monthly budget fires; the fleet's leader only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from controller.alerting.rules import CentralFacts, Kind, SiteFacts, Thresholds, budget_spent, evaluate

NOW = datetime(2026, 12, 20, 12, tzinfo=UTC)
GB = 10**9
T = Thresholds()


@pytest.mark.parametrize(
    ("budget", "used", "fires"),
    [
        (5 * GB, 0, False),
        (5 * GB, 5 * GB - 1, False),
        (5 * GB, 5 * GB, True),
        (5 * GB, 9 * GB, True),
        (0, 9 * GB, False),  # not metered
    ],
)
def test_budget_spent_fires_at_the_budget(budget: int, used: int, fires: bool) -> None:
    firing = budget_spent(SiteFacts("north", budget, used, date(2027, 1, 1)), NOW, T)
    assert (firing is not None) is fires


def test_budget_spent_names_the_site_and_when_uploads_resume() -> None:
    firing = budget_spent(SiteFacts("north", 5 * GB, 6 * GB, date(2027, 1, 1)), NOW, T)
    assert firing is not None
    assert firing.labels == {"alertname": "EdgefleetSiteBudgetSpent", "severity": "warning", "site": "north"}
    assert firing.summary == "monthly budget of site north spent: 6.00 GB of 5.00 GB; uploads held until 2027-01-01"


def test_only_the_leader_evaluates_the_sites() -> None:
    sites = [SiteFacts("north", GB, GB, date(2027, 1, 1)), SiteFacts("south", GB, 0, date(2027, 1, 1))]
    leader = evaluate([], CentralFacts("ctl-1"), NOW, T, sites)
    assert [(f.kind, f.labels["site"]) for f in leader.firing] == [(Kind.BUDGET_SPENT, "north")]
    assert evaluate(None, CentralFacts("ctl-2"), NOW, T, sites).firing == []
