"""What the dashboard says in words: the decisive part of a controller reason, the controller's thermal step,
audit entries and overrides. The reasons come from the controller's real policy, so a change in how it
words them shows here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.policy import AgentView, FleetView, OverrideView, PolicyConfig, TelemetryView, assign
from dashboard import readmodel
from dashboard.readmodel import brief, decisive_clause, describe_audit, describe_target, thermal_step_name

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GIB = 1 << 30


def policy_reason(temp: float = 50.0, throttled: int = 0, override: OverrideView | None = None, **cfg: Any) -> str:
    """The reason the controller's policy gives one agent at site "garden"."""
    telemetry = TelemetryView(at=NOW, temperature_c=temp, throttled=throttled, backlog_bytes=GIB)
    agent = AgentView("pi-1", site="garden", cores=4, ram_bytes=4 * GIB, telemetry=telemetry)
    snapshot = FleetView((agent,), agent_overrides={} if override is None else {"pi-1": override})
    return assign(snapshot, PolicyConfig(**{"site_uplink_bps": 0, **cfg}), NOW)["pi-1"].reason


@pytest.mark.parametrize(
    ("reason", "decisive", "more"),
    [
        ({}, "concurrency 8 (max 8)", 1),
        ({"temp": 75.0}, "75.0 °C ≥ 73.3 °C (70.0 °C soft limit): compression 5 → 0, concurrency 8 → 4", 2),
        ({"temp": 45.0, "throttled": 0x1}, "firmware reports under-voltage: paused", 1),
        ({"override": OverrideView(paused=True, who="olga")}, "operator olga: paused", 2),
        ({"temp": 75.0, "override": OverrideView(paused=True, who="olga")}, "operator olga: paused", 3),
        ({"temp": 75.0, "override": OverrideView(concurrency_cap=1, who="olga")}, "75.0 °C ≥ 73.3 °C", 3),
        ({"override": OverrideView(concurrency_cap=1, who="olga")}, "operator olga: concurrency cap 1", 2),
        ({"site_uplink_bps": 4_000_000}, "share 4.0 MB/s of 4.0 MB/s uplink", 2),
        (
            {"temp": 75.0, "site_uplink_bps": 4_000_000},
            "75.0 °C ≥ 73.3 °C (70.0 °C soft limit): compression 5 → 0, concurrency 8 → 4",
            3,
        ),
    ],
    # (every reason but a critical one also says which compression level the cost model chose, and why)
    ids=["sizing only", "hot", "firmware", "operator pause", "pause beats heat", "heat beats a cap", "cap", "share",
         "heat beats the share"],
)  # fmt: skip
def test_the_decisive_clause_of_a_real_reason(reason: dict[str, Any], decisive: str, more: int) -> None:
    full = policy_reason(**reason)
    clause, others = decisive_clause(full)
    assert clause.startswith(decisive), full
    assert others == more, full
    assert clause in full


@pytest.mark.parametrize(
    ("clause", "short"),
    [
        ("share 1.5 MB/s of 12.5 MB/s uplink (site demo: 8 of 8 agents with backlog, weight 1)",
         "share 1.5 MB/s of 12.5 MB/s uplink"),
        ("75.0 °C ≥ 73.3 °C (70.0 °C soft limit): compression 5 → 0", "75.0 °C ≥ 73.3 °C: compression 5 → 0"),
        ("concurrency 8 (max 8), part 16 MiB (link 6.0 MB/s)", "concurrency 8, part 16 MiB"),
        ("operator olga: paused", "operator olga: paused"),
        ("(all of it in parentheses)", "(all of it in parentheses)"),
        ("unbalanced (parenthesis", "unbalanced (parenthesis"),
    ],
)  # fmt: skip
def test_the_table_shows_a_clause_without_its_details(clause: str, short: str) -> None:
    assert brief(clause) == short


@pytest.mark.parametrize(("reason", "expected"), [("", ("", 0)), ("just one", ("just one", 0)), ("; ;", ("", 0))])
def test_the_decisive_clause_of_odd_reasons(reason: str, expected: tuple[str, int]) -> None:
    assert decisive_clause(reason) == expected


@pytest.mark.parametrize(
    ("level", "name"), [(0, "normal"), (1, "warm"), (2, "hot"), (3, "very hot"), (4, "critical"), (9, "step 9")]
)
def test_thermal_steps_in_words(level: int, name: str) -> None:
    assert thermal_step_name(level) == name


@pytest.mark.parametrize(
    ("action", "detail", "summary", "details"),
    [
        (
            "override.set",
            {"paused": True, "windows": ["22:00-06:00"], "concurrency_cap": 1, "bandwidth_cap_bps": None,
             "upload_now": False, "note": ""},
            "set the override of",
            "pause; windows: 22:00-06:00; concurrency ≤ 1; no bandwidth cap",
        ),
        (
            "override.set",
            {"paused": None, "windows": None, "concurrency_cap": None, "bandwidth_cap_bps": 3 * 1024 * 1024},
            "set the override of",
            "pause: the policy decides; windows: the policy decides; no concurrency cap; bandwidth ≤ 3.0 MiB/s",
        ),
        ("override.set", {"paused": False, "windows": [], "upload_now": True, "note": "storm coming"},
         "set the override of", "never pause (resume); windows: always; upload now; note: storm coming"),
        ("override.set", {"bandwidth_cap_bps": 0}, "set the override of", "bandwidth uncapped"),
        ("override.set", {"something_new": 5}, "set the override of", "something new: 5"),
        ("override.clear", {"existed": True}, "cleared the override of", ""),
        ("override.clear", {"existed": False}, "cleared the override of", "there was none"),
        ("login.reset", {}, "login.reset", ""),
    ],
)  # fmt: skip
def test_audit_entries_in_words(action: str, detail: dict[str, Any], summary: str, details: str) -> None:
    assert describe_audit(action, detail) == (summary, details)
    for python in ("=", "None", "True", "False", "["):
        assert python not in details


@pytest.mark.parametrize(
    ("target", "words"), [("agent:pi-01", "agent pi-01"), ("site:barn", "site barn"), ("odd", "odd")]
)
def test_audit_targets_in_words(target: str, words: str) -> None:
    assert describe_target(target) == words


def test_an_override_describes_its_bandwidth_in_the_dashboards_units() -> None:
    view = readmodel.OverrideView(scope="agent", target="pi-01", bandwidth_bps=1024 * 1024, max_concurrency=2)
    assert view.describe() == "concurrency ≤ 2; bandwidth ≤ 1.0 MiB/s"
