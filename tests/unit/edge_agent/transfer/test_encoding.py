"""Each new file's level: forced, the agent's own cost model, or raw mixed in within the assigned level."""

from __future__ import annotations

from edge_agent.engine.limits import Limits
from edge_agent.transfer.encoding import Compression, CpuBusy, Mode
from fleet_protocol.assignment import RAW

MB = 1e6
SLOW_CPU = {level: 3 * MB * f for level, f in enumerate((2.0, 1.8, 1.67, 1.43, 1.18, 1.0, 0.91, 0.67, 0.57))}


def _levels(compression: Compression, limits: Limits, link: float | None, files: int) -> list[int]:
    """Start ``files`` files one after another (each stays in flight) and return their levels."""
    return [compression.start_file(limits, link) for _ in range(files)]


def test_forced_is_the_limits_level_whatever_is_measured() -> None:
    compression = Compression(Mode.FORCED, SLOW_CPU)
    assert _levels(compression, Limits(compression_level=3), 0.1 * MB, 2) == [3, 3]
    assert compression.plan(Limits(), 0.1 * MB) is None


def _idle(share: float = 1.0) -> CpuBusy:
    """A sender that used a fifth of its share: the measured link is the link's."""
    ticks = iter(range(100))
    return CpuBusy(share, 1.0, cpu=lambda: 0.2 * share * next(ticks), wall=lambda: float(next(ticks)))


def test_the_model_chooses_until_assigned() -> None:
    compression = Compression(Mode.MODEL, SLOW_CPU)
    assert _levels(compression, Limits(concurrency=2), 0.5 * MB, 1) == [5]  # thin link, idle CPU: level 8 saves 2 %
    assert compression.start_file(Limits(concurrency=1), 50 * MB) == RAW  # encoder far below the link
    assert compression.start_file(Limits(concurrency=1), None) == 5  # no link measured: the default


def test_a_stored_file_is_the_first_floor_of_the_link_rate() -> None:
    compression = Compression(Mode.MODEL, SLOW_CPU)
    assert not compression.link_known(None)
    compression.file_stored(30 * 2**20, 0.5)  # a whole file before the engine's first second of busy link
    assert compression.link_known(None)
    plan = compression.plan(Limits(concurrency=4), None)
    assert plan is not None
    assert "link 62.9 MB/s" in plan.reason
    assert "the link was measured only as a whole file's rate: it may be faster" in plan.reason


def test_the_answered_parts_of_a_stored_file_are_the_link_when_the_estimate_has_no_sample_yet() -> None:
    """A fast link carried the first file in less than a second on the wire: its parts' rate there is the
    link's (the senders' held share decides whether the CPU set it), not a floor; the measured link wins."""
    compression = Compression(Mode.MODEL, SLOW_CPU)
    compression.file_stored(30 * 2**20, 2.5, link_so_far=48 * MB)
    assert compression.link_known(None)
    plan = compression.plan(Limits(concurrency=4), None, sender_held=0.1)
    assert plan is not None
    assert "link 48.0 MB/s" in plan.reason
    assert "it may be faster" not in plan.reason
    held = compression.plan(Limits(concurrency=4), None, sender_held=0.8)
    assert held is not None
    assert "it may be faster" in held.reason
    measured = compression.plan(Limits(concurrency=4), 6 * MB, sender_held=0.1)
    assert measured is not None
    assert "6.0 MB/s" in measured.reason


def test_the_senders_cpu_use_reaches_the_model() -> None:
    """A busy sender's rate may be its CPU's: raw; an idle one's is the link's: FLAC."""
    busy = CpuBusy(0.25, 1.0, cpu=iter([0.0, 0.25, 0.5]).__next__, wall=iter([0.0, 1.0, 2.0]).__next__)
    compression = Compression(Mode.MODEL, {5: 40 * MB}, cpu_busy=busy)
    assert compression.start_file(Limits(concurrency=4), 14 * MB) == RAW  # 100 % busy at FLAC 5's first file
    assert (plan := compression.plan(Limits(concurrency=4), 14 * MB)) is not None
    assert "the sender was 100% busy measuring the link" in plan.reason
    idle = Compression(Mode.MODEL, {5: 40 * MB}, cpu_busy=_idle(0.25))
    assert idle.start_file(Limits(concurrency=4), 4.8 * MB) == 5


def test_the_senders_held_share_decides_over_the_process_being_busy() -> None:
    """An encoder that is itself the bottleneck keeps the process busy while its parts wait on a 4.6 MB/s link:
    the senders slept most of their time on the wire, so the rate is the link's and a FLAC level fits it. Senders
    that ran or waited for a core most of that time may have set the rate themselves: raw."""
    busy = CpuBusy(0.25, 1.0, cpu=iter([0.0, 0.25, 0.5, 0.75]).__next__, wall=iter([0.0, 1.0, 2.0, 3.0]).__next__)
    compression = Compression(Mode.MODEL, {5: 7 * MB}, cpu_busy=busy)
    link = Limits(concurrency=4)
    assert compression.start_file(link, 4.6 * MB, sender_held=0.2) != RAW
    assert compression.start_file(link, 4.6 * MB, sender_held=0.8) == RAW
    plan = compression.plan(link, 4.6 * MB, sender_held=0.8)
    assert plan is not None
    assert "the senders ran or waited for the CPU 80% of their time on the wire" in plan.reason


def test_files_started_together_split_as_the_plan_says_and_a_resumed_level_is_recounted() -> None:
    compression = Compression(Mode.WITHIN, SLOW_CPU, encode_cores=2, cpu_busy=_idle())
    limits = Limits(concurrency=4, compression_level=3)
    first = compression.start_file(limits, 4 * MB)  # counted before its source opens
    assert first == 3
    compression.recount(3, RAW)  # its journal says it started raw: the FLAC slot is free again
    assert compression.start_file(limits, 4 * MB) == 3
    assert compression.start_file(limits, 4 * MB) == RAW
    compression.recount(RAW, RAW)  # the same kind: nothing changes
    assert compression.start_file(limits, 4 * MB) == RAW


def test_cpu_busy_is_cpu_over_wall_over_one_threads_share_per_window() -> None:
    cpu, wall = iter([0.0, 0.1, 0.6, 1.1]).__next__, iter([0.0, 0.5, 2.0, 2.2]).__next__
    busy = CpuBusy(0.5, 1.0, cpu=cpu, wall=wall)
    assert busy.read() is None  # 0.5 s: shorter than the window
    assert busy.read() == 0.6 / (2.0 * 0.5)
    assert busy.read() == 0.6 / (2.0 * 0.5)  # 0.2 s more: the last value kept


def test_unmeasured_is_the_configured_default() -> None:
    compression = Compression(Mode.MODEL, {}, default_level=7)
    assert compression.start_file(Limits(compression_level=7), 1 * MB) == 7


def test_a_lowered_limit_caps_the_model() -> None:
    compression = Compression(Mode.MODEL, SLOW_CPU)
    assert compression.start_file(Limits(compression_level=1, concurrency=1), 0.5 * MB) == 1
    assert compression.start_file(Limits(compression_level=RAW, concurrency=1), 0.5 * MB) == RAW


def test_within_an_assignment_raw_files_fill_the_link_while_the_cpu_encodes() -> None:
    compression = Compression(Mode.WITHIN, SLOW_CPU, encode_cores=2, cpu_busy=_idle())
    limits = Limits(concurrency=4, compression_level=3)
    assert _levels(compression, limits, 4 * MB, 4) == [3, RAW, RAW, RAW]
    compression.close_file(3)
    assert compression.start_file(limits, 4 * MB) == 3  # the FLAC slot came free
    thin = Compression(Mode.WITHIN, SLOW_CPU, cpu_busy=_idle())
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
