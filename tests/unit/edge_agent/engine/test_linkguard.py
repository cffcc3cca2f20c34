"""The thin-link guard, part deadlines and the backlog ETA: pure functions of the measured rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.linkguard import (
    CARRY_FRACTION,
    SANE_PART_S,
    UNMEASURED_BPS,
    backlog_eta_s,
    carry_bps,
    guard,
    part_deadline_s,
    stall_clock_start,
)
from fleet_protocol.assignment import MIN_PART_SIZE

KiB = 1024


@pytest.mark.parametrize(
    ("concurrency", "part_size", "rate", "expected"),
    [
        (8, 8 * MiB, None, (8, 8 * MiB)),  # not measured yet: the assignment as it is
        (8, 8 * MiB, 10 * MiB, (8, 8 * MiB)),  # 64 MiB per round, the link moves 800 MiB in 80 s
        (4, 5 * MiB, 256 * KiB, (4, 5 * MiB)),  # 20 MiB per round = 80 s of link: just in time
        (8, 8 * MiB, 256 * KiB, (4, 5 * MiB)),  # the case: 4 streams of 64 KiB/s, minimum parts
        (8, 32 * MiB, 1024 * KiB, (8, 5 * MiB)),  # smaller parts are enough: 8 x 5 MiB at 128 KiB/s each
        (4, 16 * MiB, 200 * KiB, (3, 5 * MiB)),
        (2, 5 * MiB, 32 * KiB, (1, 5 * MiB)),  # slower than one part in 80 s: one stream, never zero
        (0, 8 * MiB, 1 * KiB, (0, 8 * MiB)),  # paused stays paused
    ],
)
def test_guard_table(concurrency: int, part_size: int, rate: float | None, expected: tuple[int, int]) -> None:
    limits = Limits(concurrency=concurrency, part_size=part_size, bandwidth_bps=123, compression_level=3)
    got = guard(limits, rate)
    assert (got.concurrency, got.part_size) == expected
    assert (got.bandwidth_bps, got.compression_level, got.windows) == (123, 3, ())  # the rest as assigned


def test_guard_keeps_pause_and_windows() -> None:
    limits = Limits(concurrency=8, paused=True, windows=("01:00-02:00",), upload_now=True)
    got = guard(limits, 10 * KiB)
    assert (got.paused, got.windows, got.upload_now, got.concurrency) == (True, ("01:00-02:00",), True, 1)


@given(
    concurrency=st.integers(1, 64),
    part_size=st.integers(5, 512).map(lambda m: m * MiB),
    rate=st.floats(1.0, 1e9),
    faster=st.floats(1.0, 100.0),
)
def test_guard_properties(concurrency: int, part_size: int, rate: float, faster: float) -> None:
    limits = Limits(concurrency=concurrency, part_size=part_size)
    got = guard(limits, rate)
    assert 1 <= got.concurrency <= concurrency
    assert got.part_size <= part_size
    # every part in flight finishes in time at its share of the link, unless one stream is already too many
    assert got.concurrency * got.part_size <= rate * SANE_PART_S or got.concurrency == 1
    if got != limits:
        assert got.part_size == MIN_PART_SIZE
    # a faster link never gets fewer streams or smaller parts
    better = guard(limits, rate * faster)
    assert better.concurrency >= got.concurrency
    assert better.part_size >= got.part_size


@pytest.mark.parametrize(
    ("nbytes", "rate", "streams", "attempt", "expected"),
    [
        (5 * MiB, None, 4, 0, 20 + 5 * MiB / 500.0),  # nothing measured: 64 kbit/s assumed (2 kB/s each, x4)
        (5 * MiB, 0.0, 1, 0, 20 + 5 * MiB / 2000.0),
        (5 * MiB, 256 * KiB, 1, 0, 20 + 80.0),  # 20 s at the link rate, x4, + 20 s slack
        (5 * MiB, 256 * KiB, 4, 0, 20 + 320.0),  # a quarter of the link each
        (5 * MiB, 256 * KiB, 4, 1, 20 + 640.0),  # the first retry of the part: twice the allowance
        (5 * MiB, 256 * KiB, 4, 3, 20 + 2560.0),
        (5 * MiB, 256 * KiB, 0, 0, 20 + 80.0),  # no streams counted: one
        (5 * MiB, 256 * KiB, 1, 50, 20 + 80.0 * 1024),  # at most 10 doublings
    ],
)
def test_part_deadline(nbytes: int, rate: float | None, streams: int, attempt: int, expected: float) -> None:
    assert part_deadline_s(nbytes, rate, streams, attempt, slack_s=20.0) == pytest.approx(expected)


@given(
    nbytes=st.integers(1, 5 * 1024 * MiB),
    rate=st.floats(1.0, 1e9),
    streams=st.integers(1, 64),
    attempt=st.integers(0, 20),
)
def test_a_deadline_leaves_four_times_what_the_share_needs(
    nbytes: int, rate: float, streams: int, attempt: int
) -> None:
    deadline = part_deadline_s(nbytes, rate, streams, attempt, slack_s=0.0)
    assert deadline >= 4 * nbytes / (rate / streams) * (1 - 1e-9)
    assert part_deadline_s(nbytes, rate, streams, attempt + 1, slack_s=0.0) >= deadline
    # before anything is measured a part may take at least as long as on any link of 64 kbit/s or faster
    unmeasured = part_deadline_s(nbytes, None, streams, attempt, slack_s=0.0)
    assert unmeasured >= min(deadline, 4 * nbytes * streams / 8000) * (1 - 1e-9)  # float rounding, as above


@pytest.mark.parametrize(
    ("backlog", "rate", "eta"),
    [(0, 1000.0, 0.0), (10 * MiB, 256 * KiB, 40.0), (MiB, None, None), (MiB, 0.0, None)],
)
def test_backlog_eta(backlog: int, rate: float | None, eta: float | None) -> None:
    assert backlog_eta_s(backlog, rate) == eta


@pytest.mark.parametrize(
    ("rate", "streams", "carry"),
    [
        (2_000_000.0, 1, 1_000_000.0),  # half the measured rate
        (2_000_000.0, 4, 250_000.0),  # half of one part's share
        (None, 1, UNMEASURED_BPS / 2),  # not measured: 64 kbit/s assumed
        (0.0, 2, UNMEASURED_BPS / 4),  # measured as nothing yet (failed parts only): the same
    ],
)
def test_carry_table(rate: float | None, streams: int, carry: float) -> None:
    assert carry_bps(rate, streams) == pytest.approx(carry)


@pytest.mark.parametrize(
    ("progress_at", "started", "written", "carry", "expected"),
    [
        (50.0, 0.0, 1000, None, 50.0),  # no carry (create, complete, list): the last progress
        (50.0, 0.0, 1000, 0.0, 50.0),
        (50.0, 0.0, 100_000, 1000.0, 100.0),  # the link needs 100 s for what was written: the timer waits
        (150.0, 0.0, 100_000, 1000.0, 150.0),  # it could have passed them all by 100 s: from the last progress
        # the thin-link case: 4.7 MB written at 64 kbit/s (carry 4 kB/s) is 20 minutes of link
        (30.0, 0.0, 4_700_000, 4000.0, 1175.0),
    ],
)
def test_stall_clock_start_table(
    progress_at: float, started: float, written: int, carry: float | None, expected: float
) -> None:
    assert stall_clock_start(progress_at, started, written, carry) == pytest.approx(expected)


@given(
    started=st.floats(0, 1e4),
    after=st.floats(0, 1e4),
    written=st.integers(0, 64 * MiB),
    rate=st.floats(100, 1e9),
    streams=st.integers(1, 16),
    stall=st.floats(0.5, 600),
)
def test_a_path_moving_at_half_the_measured_share_is_never_cut_and_a_dead_one_is_within_the_bound(
    started: float, after: float, written: int, rate: float, streams: int, stall: float
) -> None:
    carry = carry_bps(rate, streams)
    progress_at = started + after
    start = stall_clock_start(progress_at, started, written, carry)
    # never before the last progress; never cut while the link at half its share is still passing the bytes on
    assert start >= progress_at
    assert start >= started + written / (CARRY_FRACTION * rate / streams) - 1e-6 * max(1.0, start)
    # a dead path (no progress after progress_at) is cut at start + stall: no later than the bound
    assert start + stall <= max(progress_at, started + written / carry) + stall + 1e-6 * max(1.0, start)
    # ... which, with every byte of a part written, is within half the part's deadline without its slack
    deadline = part_deadline_s(written, rate, streams, 0, slack_s=0.0)
    assert start - started <= max(after, deadline / 2) + 1e-6 * max(1.0, deadline)
