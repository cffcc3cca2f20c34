"""assign(snapshot, config, now): the whole policy, table-driven and property-based."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.policy import (
    AgentView,
    FleetView,
    OverrideView,
    PolicyConfig,
    PolicyState,
    TelemetryView,
    assign,
)
from fleet_protocol.assignment import AssignmentSettings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GIB = 1 << 30
CFG = PolicyConfig()


def agent(agent_id: str = "pi-1", temp: float | None = 50.0, **kw: object) -> AgentView:
    telemetry_kw = {k: kw.pop(k) for k in list(kw) if k in TelemetryView.__dataclass_fields__}
    telemetry = TelemetryView(at=NOW, temperature_c=temp, **telemetry_kw)  # type: ignore[arg-type]
    base: dict[str, object] = {"site": "garden", "cores": 4, "ram_bytes": 4 * GIB, "telemetry": telemetry}
    base.update(kw)
    return AgentView(agent_id, **base)  # type: ignore[arg-type]


def one(view: AgentView, config: PolicyConfig = CFG, **snap: object):  # type: ignore[no-untyped-def]
    return assign(FleetView((view,), **snap), config, NOW)[view.agent_id]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("temp", "concurrency", "compression", "paused", "words"),
    [
        (50.0, 8, 5, False, "concurrency 8 (max 8)"),
        (71.0, 8, 1, False, "71.0 °C ≥ 70.0 °C soft limit: compression 5 → 1"),
        (75.0, 4, 0, False, "75.0 °C ≥ 73.3 °C (70.0 °C soft limit): compression 5 → 0, concurrency 8 → 4"),
        (78.4, 2, -1, False, "78.4 °C ≥ 76.7 °C (70.0 °C soft limit): compression 5 → raw, concurrency 8 → 2"),
        (80.0, 2, -1, True, "80.0 °C ≥ 80.0 °C hard limit: paused"),
    ],
)
def test_temperature_table(temp: float, concurrency: int, compression: int, paused: bool, words: str) -> None:
    decision = one(agent(temp=temp))
    assert decision.settings.concurrency == concurrency
    assert decision.settings.compression_level == compression
    assert decision.settings.paused is paused
    assert words in decision.reason


def test_under_voltage_pauses_with_a_plain_reason() -> None:
    decision = one(agent(temp=45.0, throttled=0x1))
    assert decision.settings.paused
    assert "firmware reports under-voltage: paused" in decision.reason


def test_offline_and_stale_agents_get_nothing_new() -> None:
    fresh = agent("pi-fresh")
    offline = replace(agent("pi-off"), online=False)
    stale = agent("pi-stale")
    stale = replace(stale, telemetry=replace(stale.telemetry, at=NOW - timedelta(seconds=61)))  # type: ignore[type-var]
    born = AgentView("pi-born", site="garden", cores=4, ram_bytes=GIB)  # birth only: gets defaults at once
    decisions = assign(FleetView((fresh, offline, stale, born)), CFG, NOW)
    assert sorted(decisions) == ["pi-born", "pi-fresh"]


def test_hysteresis_state_comes_back_with_the_decision() -> None:
    hot = one(agent(temp=75.0))
    assert hot.state.thermal_level == 2
    cooling = one(agent(temp=60.0, state=hot.state))
    assert cooling.settings.concurrency == 4  # still held
    assert cooling.state.cool_since == NOW
    later = assign(FleetView((agent(temp=60.0, state=cooling.state),)), CFG, NOW + timedelta(seconds=60))
    # the telemetry is 60 s old but not stale; the hold has passed
    assert later["pi-1"].settings.concurrency == 8
    assert "cool for 60 s" in later["pi-1"].reason


@pytest.mark.parametrize(
    ("override", "check"),
    [
        (OverrideView(who="alice", paused=True), lambda s: s.paused),
        (OverrideView(who="alice", concurrency_cap=3), lambda s: s.concurrency == 3 and not s.paused),
        (OverrideView(who="alice", concurrency_cap=0), lambda s: s.concurrency == 0 and s.paused),
        (OverrideView(who="alice", windows=("01:00-02:00",)), lambda s: s.windows == ("01:00-02:00",)),
        (OverrideView(who="alice", upload_now=True), lambda s: s.upload_now and s.windows == ()),
        (OverrideView(who="alice", bandwidth_cap_bps=1000), lambda s: s.bandwidth_bps == 1000),
    ],
)
def test_operator_overrides_say_operator(override: OverrideView, check) -> None:  # type: ignore[no-untyped-def]
    config = replace(CFG, windows=("22:00-06:00",))
    decision = one(agent(backlog_bytes=10**9), config, agent_overrides={"pi-1": override})
    assert check(decision.settings)
    assert "operator alice" in decision.reason


def test_site_override_applies_and_agent_override_wins_field_by_field() -> None:
    snap = FleetView(
        (agent("pi-1"), agent("pi-2")),
        agent_overrides={"pi-1": OverrideView(who="bob", concurrency_cap=2)},
        site_overrides={"garden": OverrideView(who="alice", paused=True, concurrency_cap=4)},
    )
    decisions = assign(snap, CFG, NOW)
    assert decisions["pi-1"].settings.paused
    assert decisions["pi-1"].settings.concurrency == 2
    assert decisions["pi-2"].settings.paused
    assert decisions["pi-2"].settings.concurrency == 4


def test_windows_site_then_default_and_large_backlog_widens_with_hysteresis() -> None:
    config = replace(
        CFG, windows=("22:00-06:00",), site_windows={"garden": ("23:00-05:00",)}, widen_backlog_bytes=10 * GIB
    )
    assert one(agent(), config).settings.windows == ("23:00-05:00",)
    assert one(agent(site="field"), config).settings.windows == ("22:00-06:00",)
    widened = one(agent(backlog_bytes=11 * GIB), config)
    assert widened.settings.windows == ()
    assert widened.state.window_widened
    assert "window 23:00-05:00 opened" in widened.reason
    # 6 GiB: below the threshold but above half of it: stays open
    still = one(agent(backlog_bytes=6 * GIB, state=widened.state), config)
    assert still.settings.windows == ()
    closed = one(agent(backlog_bytes=4 * GIB, state=still.state), config)
    assert closed.settings.windows == ("23:00-05:00",)
    assert not closed.state.window_widened


def test_uplink_shared_by_backlog_and_age_per_site() -> None:
    config = replace(CFG, site_uplink_bps=10_000_000, site_uplinks={"lab": 0})
    agents = (
        agent("a", backlog_bytes=GIB, backlog_oldest_age_s=7 * 3600),
        agent("b", backlog_bytes=GIB),
        agent("c"),  # idle
        agent("d", temp=85.0, backlog_bytes=GIB),  # paused: no share
        agent("e", site="lab", backlog_bytes=GIB),  # uplink 0: no cap
    )
    decisions = assign(FleetView(agents), config, NOW)
    bw = {k: d.settings.bandwidth_bps for k, d in decisions.items()}
    assert bw["c"] == 260_000  # 256 KiB/s rounded down to two digits
    assert bw["a"] == pytest.approx(2 * bw["b"], rel=0.02)
    assert bw["a"] + bw["b"] + bw["c"] <= 10_000_000
    assert bw["d"] == 0
    assert decisions["d"].settings.paused
    assert bw["e"] == 0
    assert "share 6.4 MB/s of 10.0 MB/s uplink (site garden: 2 of 3 agents with backlog, weight 2)" in (
        decisions["a"].reason
    )


def _random_agent(draw: st.DrawFn, index: int) -> AgentView:
    temp = draw(st.one_of(st.none(), st.floats(min_value=20, max_value=95)))
    return AgentView(
        f"pi-{index:03d}",
        site=draw(st.sampled_from(["a", "b", "c"])),
        online=draw(st.booleans()),
        cores=draw(st.integers(1, 8)),
        ram_bytes=draw(st.sampled_from([0, 512 << 20, GIB, 4 * GIB, 8 * GIB])),
        telemetry=TelemetryView(
            at=NOW - timedelta(seconds=draw(st.integers(0, 120))),
            temperature_c=temp,
            throttled=draw(st.sampled_from([0, 0x1, 0x4, 0x8, 0x50000])),
            backlog_bytes=draw(st.integers(0, 10**12)),
            backlog_oldest_age_s=draw(st.floats(0, 10**6)),
            throughput_bps=draw(st.floats(0, 10**8)),
        ),
        state=PolicyState(thermal_level=draw(st.integers(0, 4))),
        previous=draw(
            st.one_of(
                st.none(),
                st.integers(0, 10**8).map(
                    lambda bw: AssignmentSettings(concurrency=2, part_size=16 << 20, bandwidth_bps=bw)
                ),
            )
        ),
    )


@st.composite
def fleets(draw: st.DrawFn) -> tuple[FleetView, PolicyConfig]:
    count = draw(st.integers(0, 25))
    agents = tuple(_random_agent(draw, i) for i in range(count))
    caps = draw(st.dictionaries(st.sampled_from([a.agent_id for a in agents] or ["x"]), st.integers(1, 10**7)))
    uplinks = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(10**5, 10**9)))
    snapshot = FleetView(agents, agent_overrides={k: OverrideView(bandwidth_cap_bps=v) for k, v in caps.items()})
    return snapshot, replace(CFG, site_uplinks=uplinks)


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_fleet_properties(fleet: tuple[FleetView, PolicyConfig]) -> None:
    snapshot, config = fleet
    decisions = assign(snapshot, config, NOW)
    # same input, same output; agent order does not matter
    assert assign(snapshot, config, NOW) == decisions
    assert assign(replace(snapshot, agents=snapshot.agents[::-1]), config, NOW) == decisions
    by_site: dict[str, int] = {}
    for view in snapshot.agents:
        decision = decisions.get(view.agent_id)
        if decision is None:
            continue
        s = decision.settings
        assert view.online
        assert decision.reason
        assert 5 << 20 <= s.part_size <= 64 << 20
        assert 1 <= s.concurrency <= config.max_concurrency
        assert -1 <= s.compression_level <= 8
        telemetry = view.telemetry
        assert telemetry is not None
        if (telemetry.temperature_c or 0) >= config.hard_limit_c or telemetry.throttled & 0x5:
            assert s.paused or s.compression_level == -1
        if not s.paused:
            assert s.bandwidth_bps >= 1
            by_site[view.site] = by_site.get(view.site, 0) + s.bandwidth_bps
        cap = snapshot.agent_overrides.get(view.agent_id)
        if cap is not None and cap.bandwidth_cap_bps:
            assert s.bandwidth_bps <= cap.bandwidth_cap_bps
    for site, total in by_site.items():
        assert total <= config.uplink_for(site), site


def test_small_rises_in_share_keep_the_previous_value_and_falls_apply_at_once() -> None:
    config = replace(CFG, site_uplink_bps=10_000_000)
    peers = tuple(agent(f"p{i}", backlog_bytes=GIB) for i in range(4))
    share = assign(FleetView((agent("a", backlog_bytes=GIB), *peers)), config, NOW)["a"].settings
    assert share.bandwidth_bps == 2_000_000
    # one peer leaves: the fair share rises to 2.5 MB/s, within 25 %: the previous value stays
    risen = assign(FleetView((agent("a", backlog_bytes=GIB, previous=share), *peers[:3])), config, NOW)
    assert risen["a"].settings.bandwidth_bps == 2_000_000
    # two leave: 3.3 MB/s is more than 25 % up: republished
    more = assign(FleetView((agent("a", backlog_bytes=GIB, previous=share), *peers[:2])), config, NOW)
    assert more["a"].settings.bandwidth_bps == 3_300_000
    # more peers: the share falls at once (the uplink must hold)
    crowd = tuple(agent(f"q{i}", backlog_bytes=GIB) for i in range(9))
    fallen = assign(FleetView((agent("a", backlog_bytes=GIB, previous=share), *crowd)), config, NOW)
    assert fallen["a"].settings.bandwidth_bps == 1_000_000


@settings(max_examples=60, deadline=None)
@given(
    center=st.floats(min_value=55.0, max_value=90.0),
    wobble=st.lists(st.floats(min_value=-0.49, max_value=0.49), min_size=5, max_size=120),
)
def test_oscillating_temperature_does_not_flap_the_published_settings(center: float, wobble: list[float]) -> None:
    """Telemetry every 5 s wobbling by less than the cooling margin: settings only ever get stricter."""
    view, now = agent(temp=center, backlog_bytes=GIB), NOW
    published: list[AssignmentSettings] = []
    for fraction in wobble:
        telemetry = replace(view.telemetry, at=now, temperature_c=center + fraction * CFG.cool_margin_c * 0.99)  # type: ignore[type-var]
        decision = assign(FleetView((replace(view, telemetry=telemetry),)), CFG, now)[view.agent_id]
        if not published or published[-1] != decision.settings:
            published.append(decision.settings)
        view = replace(view, state=decision.state, previous=decision.settings)
        now += timedelta(seconds=5)
    strictness = [(s.paused, -s.concurrency, -s.compression_level) for s in published]
    assert strictness == sorted(strictness), published
    assert len(published) <= 5
