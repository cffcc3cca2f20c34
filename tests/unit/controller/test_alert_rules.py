"""The alert rules (pure), table by table: each fires, does not fire, and resolves (fires no more) when the
condition ends; then the state transitions and the webhook payload."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.alerting.evaluator import thresholds
from controller.alerting.rules import (
    GIB,
    AgentFacts,
    CentralFacts,
    Kind,
    Thresholds,
    agent_alerts,
    central_alerts,
    clock_offset,
    evaluate,
    fingerprint,
    first_progress,
)
from controller.alerting.state import AlertInstance, Open, RetryPolicy, reconcile, webhook_payload
from controller.config import AlertsSection
from controller.policy import PolicyConfig

NOW = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
T = Thresholds()
H = 3600.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def agent(**kw: object) -> AgentFacts:
    base = AgentFacts(agent_id="pi-01", site="north", disk_bytes=32 * GIB, disk_free_bytes=20 * GIB,
                      known_since=ago(30 * 24 * H), last_completed_at=ago(60))  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def stuck(retries_then: int, retries_now: int, stalled_s: float) -> object:
    p = first_progress(uploaded=100, retries=retries_then, errors=0, now=ago(stalled_s))
    return p.advanced(uploaded=100, retries=retries_now, errors=0, now=NOW, window_s=900)


def erroring(errors_then: int, errors_now: int, age_s: float, window_s: float = 900) -> object:
    p = first_progress(uploaded=0, retries=0, errors=errors_then, now=ago(age_s))
    return p.advanced(uploaded=0, retries=0, errors=errors_now, now=NOW, window_s=window_s)


CASES: list[tuple[str, dict[str, object], set[Kind]]] = [
    ("healthy", {}, set()),
    # offline: only after offline_for_s; an offline agent's other readings are stale and not alerted on
    ("offline long", {"online": False, "status_since": ago(301)}, {Kind.OFFLINE}),
    ("offline briefly", {"online": False, "status_since": ago(100)}, set()),
    ("offline, since unknown", {"online": False, "status_since": None}, {Kind.OFFLINE}),
    ("offline and hot", {"online": False, "status_since": ago(999), "temperature_c": 90.0}, {Kind.OFFLINE}),
    # heat: the policy's soft and hard limits
    ("warm", {"temperature_c": 69.9}, set()),
    ("hot", {"temperature_c": 70.0}, {Kind.HOT}),
    ("critical", {"temperature_c": 80.0}, {Kind.CRITICAL}),
    ("critical and throttled", {"temperature_c": 85.0, "throttled": 0x1}, {Kind.CRITICAL, Kind.THROTTLED}),
    ("no temperature", {"temperature_c": None}, set()),
    # throttling now (not the sticky "has occurred" bits)
    ("throttled now", {"throttled": 0x4}, {Kind.THROTTLED}),
    ("throttled in the past", {"throttled": 0x40000}, set()),
    # disk: below 10 % or below 1 GiB
    ("disk 5 % free", {"disk_free_bytes": int(1.6 * GIB)}, {Kind.DISK_LOW}),
    ("disk 0.5 GiB free of a big disk", {"disk_bytes": 4096 * GIB, "disk_free_bytes": GIB // 2}, {Kind.DISK_LOW}),
    ("disk 12 % free", {"disk_free_bytes": int(3.84 * GIB)}, set()),
    ("disk before telemetry", {"has_telemetry": False, "disk_free_bytes": 0}, set()),
    ("disk size unknown", {"disk_bytes": 0, "disk_free_bytes": 0}, set()),
    # backlog age
    ("backlog 25 h old", {"backlog_files": 3, "backlog_oldest_age_s": 25 * H}, {Kind.BACKLOG_OLD}),
    ("backlog 2 h old", {"backlog_files": 3, "backlog_oldest_age_s": 2 * H}, set()),
    ("no backlog, stale age", {"backlog_files": 0, "backlog_oldest_age_s": 99 * H}, set()),
    # no completed upload for N h while something waits
    ("nothing done for 25 h", {"backlog_files": 1, "last_completed_at": ago(25 * H)}, {Kind.NO_UPLOAD}),
    (
        "never done, known 25 h",
        {"backlog_files": 1, "last_completed_at": None, "known_since": ago(25 * H)},
        {Kind.NO_UPLOAD},
    ),
    ("never done, new agent", {"backlog_files": 1, "last_completed_at": None, "known_since": ago(H)}, set()),
    ("nothing to do for 25 h", {"backlog_files": 0, "last_completed_at": ago(25 * H)}, set()),
    # stuck: retries rising with no progress for stuck_after_s
    ("stuck", {"active_uploads": 1, "progress": stuck(3, 9, 1801)}, {Kind.UPLOAD_STUCK}),
    ("retrying briefly", {"active_uploads": 1, "progress": stuck(3, 9, 600)}, set()),
    ("idle, no retries", {"active_uploads": 1, "progress": stuck(3, 3, 9999)}, set()),
    ("nothing to upload", {"active_uploads": 0, "backlog_files": 0, "progress": stuck(3, 9, 9999)}, set()),
    # clock skew either way
    ("clock 40 s behind", {"clock_offset_s": 40.0}, {Kind.CLOCK_SKEW}),
    ("clock 40 s ahead", {"clock_offset_s": -40.0}, {Kind.CLOCK_SKEW}),
    ("clock 2 s off", {"clock_offset_s": 2.0}, set()),
    # object store errors the agent reports, within the window
    ("errors rising", {"progress": erroring(10, 15, 300)}, {Kind.OBJECT_STORE_ERRORS}),
    ("few errors", {"progress": erroring(10, 14, 300)}, set()),
    ("errors long ago", {"progress": erroring(10, 15, 1000)}, set()),
    ("errors reset (restart)", {"progress": erroring(10, 2, 300)}, set()),
]


@pytest.mark.parametrize(("name", "facts", "kinds"), CASES, ids=[c[0] for c in CASES])
def test_agent_rules(name: str, facts: dict[str, object], kinds: set[Kind]) -> None:
    firing = agent_alerts(agent(**facts), NOW, T)
    assert {f.kind for f in firing} == kinds
    for f in firing:
        assert f.labels["agent"] == "pi-01"
        assert f.labels["site"] == "north"
        assert f.labels["alertname"].startswith("Edgefleet")
        assert f.labels["severity"] in {"warning", "critical"}
        assert "pi-01" in f.summary


@pytest.mark.parametrize(("name", "facts", "kinds"), [c for c in CASES if c[2]], ids=[c[0] for c in CASES if c[2]])
def test_every_firing_rule_resolves_when_the_agent_is_healthy_again(
    name: str, facts: dict[str, object], kinds: set[Kind]
) -> None:
    firing = agent_alerts(agent(**facts), NOW, T)
    healthy = agent_alerts(agent(), NOW + timedelta(minutes=1), T)
    changes = reconcile({f.fingerprint: Open(f.fingerprint, "fleet", NOW) for f in firing}, healthy, {"fleet"},
                        NOW, 0)  # fmt: skip
    assert sorted(changes.resolved) == sorted(f.fingerprint for f in firing)
    assert not changes.opened


def test_messages_name_the_limit() -> None:
    (hot,) = agent_alerts(agent(temperature_c=74.44), NOW, T)
    assert hot.summary == "pi-01 74.4 °C ≥ 70 °C soft limit"
    (off,) = agent_alerts(agent(online=False, status_since=ago(999)), NOW, T)
    assert off.summary == "pi-01 is offline"
    assert off.since == ago(999)


CENTRAL: list[tuple[str, CentralFacts, set[tuple[Kind, str]]]] = [
    ("all well", CentralFacts("ctl-1", {"tick": True, "ingest": True}), set()),
    ("thread down", CentralFacts("ctl-1", {"tick": False, "ingest": True}), {(Kind.THREAD_DOWN, "ctl-1")}),
    (
        "broker gone 2 min",
        CentralFacts("ctl-1", mqtt_connected=False, mqtt_down_since=ago(120)),
        {(Kind.BROKER_UNREACHABLE, "ctl-1")},
    ),
    ("broker gone 10 s", CentralFacts("ctl-1", mqtt_connected=False, mqtt_down_since=ago(10)), set()),
    (
        "probe failing",
        CentralFacts("ctl-1", s3_probe=(False, "connection refused")),
        {(Kind.OBJECT_STORE_PROBE, "fleet")},
    ),
    ("probe fine", CentralFacts("ctl-1", s3_probe=(True, "")), set()),
]


@pytest.mark.parametrize(("name", "central", "expected"), CENTRAL, ids=[c[0] for c in CENTRAL])
def test_central_rules(name: str, central: CentralFacts, expected: set[tuple[Kind, str]]) -> None:
    assert {(f.kind, f.scope) for f in central_alerts(central, NOW, T)} == expected


def test_thread_down_names_the_thread_and_controller() -> None:
    (f,) = central_alerts(CentralFacts("ctl-2", {"janitor": False}), NOW, T)
    assert f.labels == {"alertname": "EdgefleetControllerThreadDown", "severity": "critical",
                        "controller": "ctl-2", "thread": "janitor"}  # fmt: skip


def test_one_bad_agent_does_not_hide_the_others() -> None:
    bad = agent(agent_id="pi-bad", temperature_c="hot")  # a value no rule expects
    evaluation = evaluate([bad, agent(agent_id="pi-02", temperature_c=85.0)], CentralFacts("ctl-1"), NOW, T)
    assert [(f.kind, f.labels["agent"]) for f in evaluation.firing] == [(Kind.CRITICAL, "pi-02")]
    assert [a for a, _e in evaluation.failed] == ["pi-bad"]


def test_a_follower_evaluates_only_its_own_alerts() -> None:
    central = CentralFacts("ctl-2", {"tick": False}, s3_probe=(False, "x"))
    evaluation = evaluate(None, central, NOW, T)
    assert [f.kind for f in evaluation.firing] == [Kind.THREAD_DOWN]


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=4))
def test_fingerprint_is_of_the_labels_whatever_their_order(labels: dict[str, str]) -> None:
    assert fingerprint(labels) == fingerprint(dict(reversed(list(labels.items()))))
    assert len(fingerprint(labels)) == 16


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), max_size=6))
def test_clock_offset_is_the_smallest_observation(observations: list[float]) -> None:
    offset = clock_offset(observations)
    assert offset is None if not observations else offset == min(observations)


# --- state ----------------------------------------------------------------------------------------

HOT = agent_alerts(agent(temperature_c=75.0), NOW, T)[0]
THREAD = central_alerts(CentralFacts("ctl-2", {"tick": False}), NOW, T)[0]


@pytest.mark.parametrize(
    ("open_alerts", "firing", "scopes", "opened", "resolved", "repeat"),
    [
        ({}, [HOT], {"fleet"}, [HOT], [], []),  # new
        ({HOT.fingerprint: Open(HOT.fingerprint, "fleet", ago(60), ago(60))}, [HOT], {"fleet"}, [], [], []),  # still
        ({HOT.fingerprint: Open(HOT.fingerprint, "fleet", ago(60))}, [], {"fleet"}, [], [HOT.fingerprint], []),
        # another controller's alert is not resolved by this one
        ({THREAD.fingerprint: Open(THREAD.fingerprint, "ctl-2", ago(60))}, [], {"fleet", "ctl-1"}, [], [], []),
        # repeated after the interval
        (
            {HOT.fingerprint: Open(HOT.fingerprint, "fleet", ago(9000), ago(7300))},
            [HOT],
            {"fleet"},
            [],
            [],
            [HOT.fingerprint],
        ),
        ({}, [HOT, HOT], {"fleet"}, [HOT], [], []),  # the same instance twice opens once
    ],
)
def test_reconcile(
    open_alerts: dict[str, Open],
    firing: list[object],
    scopes: set[str],
    opened: list[object],
    resolved: list[str],
    repeat: list[str],
) -> None:
    changes = reconcile(open_alerts, firing, scopes, NOW, 7200)  # type: ignore[arg-type]
    assert (changes.opened, changes.resolved, changes.repeat) == (opened, resolved, repeat)


def test_repeat_interval_zero_never_repeats() -> None:
    open_alerts = {HOT.fingerprint: Open(HOT.fingerprint, "fleet", ago(10**6))}
    assert reconcile(open_alerts, [HOT], {"fleet"}, NOW, 0).repeat == []


def test_webhook_payload_is_alertmanagers_version_4() -> None:
    instance = AlertInstance(HOT.fingerprint, HOT.labels, HOT.annotations, ago(60), None, "http://dash/agents/pi-01")
    firing = webhook_payload(instance, external_url="http://dash")
    assert firing["version"] == "4"
    assert firing["status"] == "firing"
    assert firing["receiver"] == "edgefleet"
    assert firing["groupKey"].startswith('{}:{agent="pi-01", alertname="EdgefleetAgentHot"')
    (alert,) = firing["alerts"]
    assert alert["startsAt"] == "2026-06-02T11:59:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == HOT.fingerprint
    assert alert["labels"] == dict(HOT.labels)
    assert alert["annotations"]["summary"] == HOT.summary
    assert alert["generatorURL"] == "http://dash/agents/pi-01"
    resolved = webhook_payload(replace(instance, resolved_at=NOW))
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-06-02T12:00:00Z"


@pytest.mark.parametrize(("attempts", "delay"), [(1, 5.0), (2, 10.0), (3, 20.0), (8, 600.0), (10**6, 600.0)])
def test_retry_backoff(attempts: int, delay: float) -> None:
    assert RetryPolicy(5.0, 600.0).delay(attempts) == delay


def test_thresholds_come_from_alerts_config_and_the_policys_limits() -> None:
    got = thresholds(AlertsSection(clock_skew_s=9.0, no_upload_h=3.0), PolicyConfig(soft_limit_c=60, hard_limit_c=75))
    assert got == Thresholds(soft_limit_c=60, hard_limit_c=75, clock_skew_s=9.0, no_upload_h=3.0)
