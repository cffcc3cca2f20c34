"""``assign`` keeps every agent's part buffers inside the memory limit it reports: for every hardware profile,
memory limit, baseline, temperature, link, backlog, override and config, concurrency × part size + baseline
≤ 80 % of the limit (or concurrency 0, said in the reason, when not even one minimum part fits)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.policy import AgentView, FleetView, PolicyConfig, PolicyState, TelemetryView, assign
from edgefleet.sim.profiles import PROFILES
from fleet_plan.memory import HEADROOM
from fleet_protocol.assignment import MIN_PART_SIZE, MiB
from fleet_protocol.numbers import MAX_BYTES, MAX_RATE_BPS
from tests.unit.controller.test_policy_total import NOW, configs, levels, overrides, previous_settings, times

limits = st.one_of(
    st.sampled_from([0, 64 * MiB, 128 * MiB, 256 * MiB, 512 * MiB, 1024 * MiB]),
    st.integers(0, MAX_BYTES),
)
baselines = st.one_of(st.sampled_from([0, 40 * MiB, 80 * MiB, 250 * MiB]), st.integers(0, MAX_BYTES))
readings = st.builds(
    TelemetryView,
    at=st.just(NOW - timedelta(seconds=1)),
    temperature_c=st.one_of(st.none(), st.floats(-60, 150)),
    throttled=st.sampled_from([0, 0x1, 0x4, 0x8, 0x50000]),
    backlog_bytes=st.integers(0, 2**40),
    active_uploads=st.integers(0, 64),
    throughput_bps=st.one_of(st.sampled_from([0.0, 8e3, 1e6, 1e8]), st.floats(0, MAX_RATE_BPS)),
)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[FleetView, PolicyConfig]:
    views = []
    for index in range(draw(st.integers(1, 5))):
        profile = PROFILES[draw(st.sampled_from(sorted(PROFILES)))]
        views.append(
            AgentView(
                agent_id=f"pi-{index}",
                site=draw(st.sampled_from(["", "barn"])),
                cores=profile.cores,
                ram_bytes=profile.ram_bytes,
                memory_limit_bytes=draw(limits),
                baseline_rss_bytes=draw(baselines),
                telemetry=draw(st.one_of(st.none(), readings)),
                state=PolicyState(draw(levels), draw(st.one_of(st.none(), times)), draw(st.booleans())),
                previous=draw(st.one_of(st.none(), previous_settings)),
            )
        )
    ids = [view.agent_id for view in views]
    agent_overrides = draw(st.dictionaries(st.sampled_from(ids), overrides, max_size=2))
    return FleetView(agents=tuple(views), agent_overrides=agent_overrides), draw(configs)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_part_buffers_fit_the_reported_memory_limit(fleet: tuple[FleetView, PolicyConfig]) -> None:
    view, config = fleet
    decisions = assign(view, config, NOW)
    assert decisions  # every agent here is live
    for agent in view.agents:
        settings_ = decisions[agent.agent_id].settings
        if agent.memory_limit_bytes == 0:  # an older agent: the RAM budget as before
            continue
        room = agent.memory_limit_bytes * HEADROOM
        if settings_.concurrency:
            assert settings_.concurrency * settings_.part_size + agent.baseline_rss_bytes <= room
        elif MIN_PART_SIZE + agent.baseline_rss_bytes > room:
            assert "not even one 5 MiB part fits" in decisions[agent.agent_id].reason


def test_a_pi_4_in_the_ansible_roles_256_mib_cgroup() -> None:
    """The review's case: 8 × 32 MiB for a Pi 4 4 GB on a fast link, in a 256 MiB cgroup; now it fits."""
    pi4 = PROFILES["pi4-4g"]
    fast = TelemetryView(at=NOW, temperature_c=45.0, backlog_bytes=10**10, throughput_bps=50e6)
    agent = AgentView("pi-4", cores=pi4.cores, ram_bytes=pi4.ram_bytes, telemetry=fast)
    before = assign(FleetView(agents=(agent,)), PolicyConfig(), NOW)["pi-4"]
    assert before.settings.concurrency * before.settings.part_size > 256 * MiB * HEADROOM  # what went wrong
    limited = AgentView(
        "pi-4",
        cores=pi4.cores,
        ram_bytes=pi4.ram_bytes,
        telemetry=fast,
        memory_limit_bytes=256 * MiB,
        baseline_rss_bytes=70 * MiB,
    )
    after = assign(FleetView(agents=(limited,)), PolicyConfig(), NOW)["pi-4"]
    assert after.settings.concurrency == before.settings.concurrency  # smaller parts first
    assert after.settings.concurrency * after.settings.part_size + 70 * MiB <= 256 * MiB * HEADROOM
    assert "memory: 80% of the 256 MiB limit" in after.reason
