"""The version drift alert rule: an online agent that runs another release than the newest one seen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.alerting.rules import AgentFacts, CentralFacts, Kind, Thresholds, evaluate

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FLEET = [
    AgentFacts("pi-a", software_version="0.2.0", last_completed_at=NOW, known_since=NOW),
    AgentFacts("pi-b", software_version="0.1.0", last_completed_at=NOW, known_since=NOW),
    AgentFacts("pi-c", software_version="0.10.0", last_completed_at=NOW, known_since=NOW),
    AgentFacts("pi-d", software_version="0.1.0", online=False, status_since=NOW, known_since=NOW),
    AgentFacts("pi-e", software_version="", last_completed_at=NOW, known_since=NOW),  # no birth yet
]


def drifting(central: str) -> dict[str, str]:
    found = evaluate(FLEET, CentralFacts("c1", version=central), NOW, Thresholds()).firing
    return {f.labels["agent"]: f.annotations["summary"] for f in found if f.kind is Kind.VERSION_DRIFT}


@pytest.mark.parametrize(
    ("central", "target", "behind"),
    [
        ("0.10.0", "0.10.0", ["pi-a", "pi-b"]),  # pi-d is offline: its offline alert says enough
        ("0.11.0", "0.11.0", ["pi-a", "pi-b", "pi-c"]),
        ("", "0.10.0", ["pi-a", "pi-b"]),  # the newest agent sets the target
    ],
)
def test_agents_behind_the_newest_release_drift(central: str, target: str, behind: list[str]) -> None:
    versions = {f.agent_id: f.software_version for f in FLEET}
    assert drifting(central) == {a: f"{a} runs {versions[a]}, not {target}" for a in behind}


def test_one_release_everywhere_is_no_drift() -> None:
    fleet = [AgentFacts("pi-x", software_version="0.2.0", last_completed_at=NOW, known_since=NOW)]
    found = evaluate(fleet, CentralFacts("c1", version="0.2.0"), NOW, Thresholds()).firing
    assert not [f for f in found if f.kind is Kind.VERSION_DRIFT]
