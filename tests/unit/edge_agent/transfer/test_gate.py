"""The slot gate's decisions, with the clock injected (no waiting: only non-blocking paths are exercised)."""

import time

import pytest

from edge_agent.engine.limits import Limits
from edge_agent.transfer.gate import SlotGate, Stopped


def local_noon() -> float:
    t = time.localtime()
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 12, 0, 0, 0, 0, -1))


@pytest.mark.parametrize(
    ("limits", "closed_for"),
    [
        (Limits(), 0.0),
        (Limits(windows=("11:00-13:00",)), 0.0),
        (Limits(windows=("13:00-14:00",)), 3600.0),
        (Limits(windows=("13:00-14:00",), upload_now=True), 0.0),
        (Limits(paused=True), float("inf")),
        (Limits(concurrency=0), float("inf")),
    ],
)
def test_closed_for(limits: Limits, closed_for: float) -> None:
    gate = SlotGate(limits, clock=local_noon)
    assert gate.closed_for() == pytest.approx(closed_for)


def test_slots_are_counted_and_limits_apply_at_once() -> None:
    gate = SlotGate(Limits(concurrency=2), clock=local_noon)
    gate.acquire(lambda: False)
    gate.acquire(lambda: False)
    assert gate.in_use == 2
    with pytest.raises(Stopped):  # full: a cancelled waiter leaves at once
        gate.acquire(lambda: True)
    gate.set_limits(Limits(concurrency=3))
    gate.acquire(lambda: False)
    assert gate.in_use == 3
    for _ in range(3):
        gate.release()
    assert gate.in_use == 0
    gate.set_limits(Limits(paused=True))
    with pytest.raises(Stopped):
        gate.wait_open(lambda: True)
