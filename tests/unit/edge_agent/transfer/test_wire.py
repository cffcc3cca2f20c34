"""The wire's watch (progress, stall, deadline, pacing, cancel) and the link (pacing on the shared bucket, the
estimate, taps with deadlines), with the clock passed in: no sockets, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from edge_agent.engine.limits import MiB
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.link import Link
from edge_agent.transfer.wire import WRITE_MAX, Stalled, Watch

KiB = 1024


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeTap:
    clock: Clock
    deadline_s: float | None = None
    carry_bps: float | None = None
    step: int = 0  # quantum
    pace_takes_s: float = 0.0
    paced: list[int] = field(default_factory=list)
    cancel: bool = False

    def quantum(self) -> int:
        return self.step

    def pace(self, nbytes: int) -> None:
        self.paced.append(nbytes)
        self.clock.t += self.pace_takes_s

    def cancelled(self) -> bool:
        return self.cancel


def test_a_request_that_keeps_moving_never_stalls_however_long_it_takes() -> None:
    clock = Clock()
    tap = FakeTap(clock)
    watch = Watch(10.0, tap, clock)
    for _ in range(100):  # 100 writes 9 s apart: 900 s in all, 90 stall timeouts
        clock.t += 9.0
        watch.check()
        watch.wrote(64 * KiB, unacked=32 * KiB)
    assert watch.written == 100 * 64 * KiB
    assert watch.acked == watch.written - 32 * KiB


def test_a_closed_window_is_no_stall_while_the_link_could_still_be_passing_the_bytes_on() -> None:
    """The zero-window case: 3 MB written at once, 1 MB acknowledged, then nothing acknowledged for minutes (a
    middlebox with a full buffer and a closed window) on a link measured at 8 kB/s (carry 4 kB/s): the stall
    timer starts when the link could have passed on all 3 MB (750 s), and cuts a dead path 60 s later."""
    clock = Clock()
    watch = Watch(60.0, FakeTap(clock, carry_bps=4000.0), clock)
    watch.wrote(3_000_000, unacked=2_000_000)
    for _ in range(74):  # 740 s of nothing acknowledged, 12 stall timeouts: no stall
        clock.t += 10.0
        watch.heard(unacked=2_000_000)
        watch.check()
    watch.heard(unacked=1_500_000)  # the window opened: 0.5 MB acknowledged at once
    clock.t = watch.started + 750.0 + 60.0  # the stall timeout after the link could have passed them all on
    watch.check()
    clock.t += 0.5
    with pytest.raises(Stalled, match=r"nothing written or acknowledged for 60 s .* after 750 s"):
        watch.check()


def test_nothing_written_or_acknowledged_for_the_stall_timeout_is_a_stall() -> None:
    clock = Clock()
    watch = Watch(10.0, FakeTap(clock), clock)
    watch.wrote(1 * MiB, unacked=1 * MiB)
    clock.t += 10.0
    watch.check()  # exactly the timeout: not yet
    clock.t += 0.5
    watch.heard(unacked=1 * MiB)  # the kernel still holds all of it
    with pytest.raises(Stalled, match="nothing written or acknowledged for 10 s"):
        watch.check()
    assert watch.fault is not None
    assert "0 of 1048576 bytes acknowledged" in watch.fault


def test_acknowledged_bytes_are_progress_while_waiting_for_the_answer() -> None:
    clock = Clock()
    watch = Watch(10.0, FakeTap(clock), clock)  # no deadline: the stall timer also bounds the answer
    watch.wrote(4 * MiB, unacked=4 * MiB)  # all written into the socket buffer at once
    watch.await_answer()
    for left in range(4 * MiB - 256 * KiB, -1, -256 * KiB):  # drained at 256 KiB per 8 s
        clock.t += 8.0
        watch.heard(unacked=left)
        watch.check()
    assert watch.acked == 4 * MiB
    watch.heard(unacked=0)  # nothing new: no progress
    assert watch.acked == 4 * MiB
    clock.t += 10.5  # then the server never answers
    with pytest.raises(Stalled, match="stalled"):
        watch.check()


@pytest.mark.parametrize(
    ("deadline", "awaiting", "unacked", "after_s", "fault"),
    [
        # written and acknowledged (a buffering middlebox took it all), answer awaited: only the deadline counts
        (600.0, True, 0, 599.0, None),
        (600.0, True, 0, 601.0, "deadline of 600 s"),
        # bytes still unacknowledged: the next hop is not taking them, a real stall
        (600.0, True, 1, 60.5, "stalled"),
        # still writing (not awaiting): a stall
        (600.0, False, 0, 60.5, "stalled"),
        # no deadline (a small request: create, complete, list): the stall timer bounds its answer
        (None, True, 0, 60.5, "stalled"),
        (None, True, 0, 59.0, None),
    ],
)
def test_once_every_byte_is_acknowledged_the_answer_is_awaited_until_the_deadline(
    deadline: float | None, awaiting: bool, unacked: int, after_s: float, fault: str | None
) -> None:
    clock = Clock()
    watch = Watch(60.0, FakeTap(clock, deadline_s=deadline), clock)
    watch.wrote(2 * MiB, unacked=unacked)
    if awaiting:
        watch.await_answer()
    clock.t += after_s
    watch.heard(unacked=unacked)
    if fault is None:
        watch.check()
    else:
        with pytest.raises(Stalled, match=fault):
            watch.check()


def test_a_new_write_ends_the_wait_for_an_answer() -> None:
    clock = Clock()
    watch = Watch(10.0, FakeTap(clock, deadline_s=1000.0), clock)
    watch.wrote(100, unacked=0)
    watch.await_answer()
    watch.answered()  # the answer came: the next request on the connection is written under the stall timer
    watch.wrote(100, unacked=100)
    clock.t += 10.5
    with pytest.raises(Stalled, match="stalled"):
        watch.check()


def test_without_the_kernels_count_a_written_byte_counts_as_acknowledged() -> None:
    clock = Clock()
    watch = Watch(10.0, FakeTap(clock), clock)
    watch.wrote(1000, unacked=None)
    watch.wrote(500, unacked=None)
    assert watch.acked == 1500


def test_the_deadline_fails_a_request_that_moves_but_too_slowly() -> None:
    clock = Clock()
    watch = Watch(10.0, FakeTap(clock, deadline_s=100.0), clock)
    for _ in range(20):
        clock.t += 5.0
        watch.wrote(1000, unacked=0)
        watch.check()  # 100 s: still in time
    clock.t += 1.0
    watch.wrote(1000, unacked=0)
    with pytest.raises(Stalled, match="deadline of 100 s"):
        watch.check()


def test_without_a_tap_only_the_stall_timeout_applies() -> None:
    clock = Clock()
    watch = Watch(5.0, None, clock)
    assert watch.next_chunk(10 * MiB) == WRITE_MAX
    clock.t += 4.0
    watch.wrote(10, unacked=None)
    clock.t += 4.0
    watch.check()
    clock.t += 2.0
    with pytest.raises(Stalled):
        watch.check()


def test_pacing_gives_chunks_of_the_quantum_and_waiting_for_it_is_not_a_stall() -> None:
    clock = Clock()
    tap = FakeTap(clock, step=20 * KiB, pace_takes_s=30.0)  # a very low cap shared by many parts
    watch = Watch(10.0, tap, clock)
    assert watch.next_chunk(1 * MiB) == 20 * KiB
    assert watch.next_chunk(5 * KiB) == 5 * KiB
    assert tap.paced == [20 * KiB, 5 * KiB]
    watch.check()  # 60 s went by, all of it waiting for the cap
    assert FakeTap(clock).quantum() == 0
    assert Watch(10.0, FakeTap(clock), clock).next_chunk(1 * MiB) == WRITE_MAX  # no cap: big writes


def test_a_cancelled_part_stops_at_the_next_look() -> None:
    clock = Clock()
    tap = FakeTap(clock)
    watch = Watch(10.0, tap, clock)
    watch.check()
    tap.cancel = True
    with pytest.raises(Stopped):
        watch.check()


# -- the link ------------------------------------------------------------------------------------------
class Sleeps:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    def __call__(self, seconds: float, cancelled: Callable[[], bool]) -> None:
        if cancelled():
            raise Stopped
        self.slept.append(seconds)
        self.clock.t += seconds


def test_the_link_paces_on_the_shared_bucket_and_measures_completed_parts() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    link = Link(1 * MiB, stall_timeout_s=10.0, sleep=sleeps, clock=clock)
    assert link.quantum() == MiB // 50
    start = clock.t
    handle = link.begin(100 * (MiB // 50))
    for _ in range(100):
        link.pace(link.quantum(), lambda: False)
    assert link.rate() is None  # written is not arrived: nothing measured until the server answers
    link.end(handle, completed=True)
    assert clock.t - start == pytest.approx(100 * (MiB // 50) / MiB)  # the cap, from an empty bucket
    rate = link.rate()
    assert rate == pytest.approx(MiB, rel=1e-3)
    link.set_cap(0)
    assert link.quantum() == 0
    link.pace(10 * MiB, lambda: False)  # no cap: at once
    assert clock.t - start == pytest.approx(2.0, rel=0.01)


def test_a_stopped_part_is_not_measured() -> None:
    clock = Clock()
    link = Link(0, stall_timeout_s=10.0, sleep=Sleeps(clock), clock=clock)
    handle = link.begin(5 * MiB)
    clock.t += 30.0
    link.end(handle, completed=None)
    assert link.rate() is None


def test_a_tap_carries_the_deadline_from_the_measured_rate() -> None:
    clock = Clock()
    link = Link(0, stall_timeout_s=10.0, sleep=Sleeps(clock), clock=clock)
    # not measured yet: the deadline assumes 64 kbit/s
    assert link.tap(5 * MiB, 0, 4, lambda: False).deadline_s == pytest.approx(20.0 + 5 * MiB / (0.25 * 8000 / 4))
    handle = link.begin(512 * KiB)
    clock.t += 2.0
    link.end(handle, completed=True)
    tap = link.tap(5 * MiB, 1, 4, lambda: True)
    assert tap.deadline_s == pytest.approx(20.0 + 5 * MiB / (0.25 * 256 * KiB / 4) * 2)
    assert tap.cancelled()
    with pytest.raises(Stopped):
        Link(1000, 10.0, Sleeps(clock), clock).pace(1000, lambda: True)
