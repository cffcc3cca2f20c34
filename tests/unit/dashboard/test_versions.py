"""The fleet table's software version: column, filter, order, and the version-drift alert (pure)."""

from __future__ import annotations

import pytest

from controller.policy import PolicyConfig
from dashboard.listing import FleetView, SortKey, known_versions, select_rows, view_page
from dashboard.readmodel import AlertKind, fleet_alerts, version_alerts
from tests.unit.dashboard.factories import row

ROWS = [
    row("pi-a", software_version="0.2.0"),
    row("pi-b", software_version="0.1.0"),
    row("pi-c", software_version="0.10.0"),
    row("pi-d", software_version="0.1.0", online=False),
    row("pi-e", software_version=""),  # no birth yet
]


def test_known_versions_newest_first() -> None:
    assert known_versions(ROWS) == ["0.10.0", "0.2.0", "0.1.0"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("", ["pi-a", "pi-b", "pi-c", "pi-d", "pi-e"]), ("0.1.0", ["pi-b", "pi-d"]), ("0.3.0", [])],
)
def test_the_version_filter(version: str, expected: list[str]) -> None:
    assert [r.agent_id for r in select_rows(ROWS, version=version)] == expected
    assert [r.agent_id for r in view_page(ROWS, FleetView(version=version)).rows] == expected
    assert f"version={version}" in FleetView(version=version).params()


def test_sorting_by_version_compares_releases_not_text() -> None:
    ordered = select_rows(ROWS, sort=SortKey.VERSION, descending=True)
    assert [r.agent_id for r in ordered] == ["pi-c", "pi-a", "pi-b", "pi-d", "pi-e"]


@pytest.mark.parametrize(
    ("central", "behind"),
    [
        ("0.10.0", {"pi-a": "0.2.0", "pi-b": "0.1.0"}),  # pi-d is offline: its offline alert says enough
        ("0.11.0", {"pi-a": "0.2.0", "pi-b": "0.1.0", "pi-c": "0.10.0"}),
        ("", {"pi-a": "0.2.0", "pi-b": "0.1.0"}),  # the newest agent sets the target
    ],
)
def test_the_version_drift_alert(central: str, behind: dict[str, str]) -> None:
    alerts = version_alerts(ROWS, central)
    assert {a.agent_id: a.kind for a in alerts} == dict.fromkeys(behind, AlertKind.VERSION)
    target = max(central, "0.10.0", key=lambda v: tuple(map(int, v.split(".")) if v else ()))
    assert [a.message for a in alerts] == [f"{agent} runs {v}, not {target}" for agent, v in behind.items()]


def test_the_drift_alerts_are_part_of_the_fleet_alerts() -> None:
    alerts = fleet_alerts(ROWS, PolicyConfig(), "0.10.0")
    assert [(a.agent_id, a.kind) for a in alerts] == [
        ("pi-d", AlertKind.OFFLINE),
        ("pi-a", AlertKind.VERSION),
        ("pi-b", AlertKind.VERSION),
    ]
    assert not version_alerts([row("pi-x", software_version="0.2.0")], "0.2.0")
