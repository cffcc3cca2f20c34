"""The policy's compression step: the cost model's level under the heat's cap, sticky, in the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policy import AgentView, FleetView, PolicyConfig, TelemetryView, assign
from controller.policy.compression import allowed_levels, by_level
from fleet_protocol.assignment import RAW, AssignmentSettings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GIB = 1 << 30
MB = 1e6
CFG = PolicyConfig(site_uplink_bps=0)


def _rates(e5: float) -> tuple[float, ...]:
    """A probe's per-level speeds: level 5 at ``e5``, the others in the documented proportions."""
    return tuple(e5 * f for f in (2.0, 1.8, 1.67, 1.43, 1.18, 1.0, 0.91, 0.67, 0.57))


def pi(
    link: float,
    e5: float = 3 * MB,
    temp: float = 50.0,
    cores: int = 1,
    previous: AssignmentSettings | None = None,
    measured: bool = True,
    transcoders: int = 0,
) -> AgentView:
    telemetry = TelemetryView(at=NOW, temperature_c=temp, throughput_bps=link, backlog_bytes=GIB, backlog_files=50)
    return AgentView(
        "pi-1",
        site="garden",
        cores=cores,
        ram_bytes=4 * GIB,
        encode_bps_by_level=_rates(e5) if measured else (),
        telemetry=telemetry,
        previous=previous,
        transcoder_capacity=transcoders,
    )


def decided(view: AgentView, config: PolicyConfig = CFG) -> tuple[int, str]:
    decision = assign(FleetView((view,)), config, NOW)[view.agent_id]
    return decision.settings.compression_level, decision.reason


@pytest.mark.parametrize(
    ("name", "view", "level", "words"),
    [
        ("thin link: level 5, level 8's 2 % not worth its CPU", pi(0.5 * MB), 5,
         "compression FLAC 5: link-bound at 0.5 MB/s (over FLAC 8: only 2.0% faster, more CPU)"),
        ("Pi Zero on Ethernet: raw", pi(12 * MB, e5=2 * MB), RAW, "compression raw: the CPU sends raw at 2.2 MB/s"),
        ("encoder near the link: a cheap level", pi(1 * MB), 4, "compression FLAC 4: CPU-bound"),
        ("encoder below the link: raw, which costs CPU too", pi(2.5 * MB), RAW, "the CPU sends raw at 3.2 MB/s"),
        ("fast Pi, fast link, many cores: raw", pi(50 * MB, e5=14 * MB, cores=4), RAW, "compression raw"),
        ("no link measured: the default", pi(0.0), 5, "FLAC 5: default (link rate not measured yet)"),
        ("old agent without rates: the default", pi(0.5 * MB, measured=False), 5, "encode rate not measured yet"),
        ("warm caps the level at 1", pi(0.5 * MB, temp=71.0), 1, "compression FLAC 1: link-bound"),
        ("hot: level 0 at most", pi(0.5 * MB, temp=75.0), 0, "compression FLAC 0"),
        ("warm, raw is still allowed", pi(12 * MB, e5=2 * MB, temp=71.0), RAW, "compression raw"),
        ("very hot: raw, the heat says why", pi(0.5 * MB, temp=78.4), RAW, "compression 5 → raw"),
        (
            "hot, a transcoder alive: raw",
            pi(0.5 * MB, temp=75.0, transcoders=1),
            RAW,
            "central transcoder compresses (1 worker)",
        ),
        ("hot, no transcoder: FLAC 0", pi(0.5 * MB, temp=75.0, transcoders=0), 0, "compression FLAC 0"),
        ("warm, transcoders alive: FLAC", pi(0.5 * MB, temp=71.0, transcoders=3), 1, "compression FLAC 1"),
        ("cool, transcoders alive: FLAC", pi(0.5 * MB, transcoders=3), 5, "compression FLAC 5"),
        ("very hot, transcoders: the heat says", pi(0.5 * MB, temp=78.4, transcoders=2), RAW, "compression 5 → raw"),
    ],
)  # fmt: skip
def test_the_level_and_its_reason(name: str, view: AgentView, level: int, words: str) -> None:
    got, reason = decided(view)
    assert got == level, reason
    assert words in reason


def test_a_mixed_plan_sends_the_flac_files_level() -> None:
    level, reason = decided(pi(4 * MB, e5=3 * MB, cores=2))
    assert level == 1
    assert "compression 2 of 4 files in flight FLAC 1, rest raw: its encoders store 2.9 MB/s < link 4.0 MB/s" in reason


def test_the_level_in_force_is_kept_while_it_is_nearly_as_good() -> None:
    assert decided(pi(0.5 * MB))[0] == 5
    level, reason = decided(pi(0.5 * MB, previous=AssignmentSettings(compression_level=6)))  # 0.5 % fewer bytes
    assert level == 6
    assert "FLAC 6: link-bound at 0.5 MB/s (kept: FLAC 5 is within 1.5%)" in reason
    assert decided(pi(0.5 * MB, previous=AssignmentSettings(compression_level=4)))[0] == 4  # 1 % more bytes
    assert decided(pi(0.5 * MB, previous=AssignmentSettings(compression_level=8)))[0] == 5  # 2 % apart: not kept
    assert decided(pi(0.5 * MB, temp=71.0, previous=AssignmentSettings(compression_level=7)))[0] == 1  # not allowed


def test_a_configured_default_level_is_the_unmeasured_default() -> None:
    level, _ = decided(pi(0.0), PolicyConfig(site_uplink_bps=0, default_compression_level=7))
    assert level == 7


def test_the_operators_bandwidth_cap_is_the_link() -> None:
    from controller.policy import OverrideView

    view = pi(12 * MB, e5=2 * MB)
    decision = assign(FleetView((view,), agent_overrides={"pi-1": OverrideView(bandwidth_cap_bps=500_000)}), CFG, NOW)
    assert decision["pi-1"].settings.compression_level == 4
    assert "compression FLAC 4: link-bound at 0.5 MB/s" in decision["pi-1"].reason


def test_allowed_levels_follow_the_thermal_steps() -> None:
    assert allowed_levels(0, CFG) == tuple(range(9))
    assert allowed_levels(1, CFG) == (0, 1)
    assert allowed_levels(2, CFG) == (0,)


@given(st.lists(st.one_of(st.floats(), st.integers(), st.booleans(), st.none(), st.text()), max_size=20))
def test_by_level_takes_only_positive_finite_numbers(values: list[object]) -> None:
    got = by_level(values)
    assert set(got) <= set(range(9))
    assert all(v > 0 for v in got.values())
