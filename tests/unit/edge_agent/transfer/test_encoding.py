"""Each new file's level: forced, the agent's own cost model, or raw mixed in within the assigned level."""

from __future__ import annotations

from edge_agent.engine.limits import Limits
from edge_agent.transfer.encoding import Compression, Mode
from fleet_protocol.assignment import RAW

MB = 1e6
SLOW_CPU = {level: 3 * MB * f for level, f in enumerate((2.0, 1.8, 1.67, 1.43, 1.18, 1.0, 0.91, 0.67, 0.57))}


def _levels(compression: Compression, limits: Limits, link: float | None, files: int) -> list[int]:
    """Start ``files`` files one after another (each stays open) and return their levels."""
    levels = []
    for _ in range(files):
        level = compression.start_file(limits, link)
        compression.open_file(level)
        levels.append(level)
    return levels


def test_forced_is_the_limits_level_whatever_is_measured() -> None:
    compression = Compression(Mode.FORCED, SLOW_CPU)
    assert _levels(compression, Limits(compression_level=3), 0.1 * MB, 2) == [3, 3]
    assert compression.plan(Limits(), 0.1 * MB) is None


def test_the_model_chooses_until_assigned() -> None:
    compression = Compression(Mode.MODEL, SLOW_CPU)
    assert _levels(compression, Limits(concurrency=2), 0.5 * MB, 1) == [8]  # thin link, idle CPU
    assert compression.start_file(Limits(concurrency=1), 50 * MB) == RAW  # encoder far below the link
    assert compression.start_file(Limits(concurrency=1), None) == 5  # no link measured: the default


def test_unmeasured_is_the_configured_default() -> None:
    compression = Compression(Mode.MODEL, {}, default_level=7)
    assert compression.start_file(Limits(compression_level=7), 1 * MB) == 7


def test_a_lowered_limit_caps_the_model() -> None:
    compression = Compression(Mode.MODEL, SLOW_CPU)
    assert compression.start_file(Limits(compression_level=1, concurrency=1), 0.5 * MB) == 1
    assert compression.start_file(Limits(compression_level=RAW, concurrency=1), 0.5 * MB) == RAW


def test_within_an_assignment_raw_files_fill_the_link_while_the_cpu_encodes() -> None:
    compression = Compression(Mode.WITHIN, SLOW_CPU, encode_cores=2)
    limits = Limits(concurrency=4, compression_level=3)
    assert _levels(compression, limits, 20 * MB, 4) == [3, 3, RAW, RAW]
    compression.close_file(3)
    assert compression.start_file(limits, 20 * MB) == 3  # a FLAC slot came free
    thin = Compression(Mode.WITHIN, SLOW_CPU)
    assert _levels(thin, Limits(concurrency=4, compression_level=6), 0.5 * MB, 4) == [6] * 4


def test_set_assigned_switches_model_and_within_but_not_forced() -> None:
    def modes(start: Mode) -> list[Mode]:
        compression = Compression(start)
        seen = []
        for assigned in (True, False):
            compression.set_assigned(assigned)
            seen.append(compression.mode)
        return seen

    assert modes(Mode.MODEL) == [Mode.WITHIN, Mode.MODEL]
    assert modes(Mode.FORCED) == [Mode.FORCED, Mode.FORCED]


def test_measured_reports_probe_and_real_encodes_in_wire_form() -> None:
    compression = Compression(Mode.MODEL, {5: 10 * MB})
    assert compression.measured() == ([0, 0, 0, 0, 0, 10 * MB, 0, 0, 0], [])
    compression.observe(5, 64 * 2**20, 1.0, 60, 100)
    rates, ratios = compression.measured()
    assert rates[5] > 10 * MB
    assert ratios[5] == 0.6
