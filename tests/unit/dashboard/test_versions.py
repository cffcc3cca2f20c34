"""The fleet table's software version: column, filter and order (pure). The drift alert is the controller's
(tests/unit/controller/test_version_drift_rule.py)."""

from __future__ import annotations

import pytest

from dashboard.listing import FleetView, SortKey, known_versions, select_rows, view_page
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
