"""How much the CPU held the senders back: the share of their time on the wire, smoothed by wire time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.senderheld import SenderHeld


def test_unknown_until_a_part_was_measured_then_the_first_as_it_is() -> None:
    held = SenderHeld(tau_s=10)
    assert held.share is None
    held.add(0.5, 2.0)
    assert held.share == 0.25


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([(0.1, 1.0), (0.9, 1.0)], 0.1 + (1 - math.exp(-0.1)) * 0.8),  # a short part moves it a little
        ([(0.1, 1.0), (90.0, 100.0)], 0.9),  # a part of 10 tau weighs in almost alone
        ([(3.0, 1.0)], 1.0),  # more held than wall (clocks read apart): at most all of it
        ([(0.1, 1.0), (1.0, 0.0)], 0.1),  # no time on the wire: nothing measured
        ([(0.1, 1.0), (-1.0, 1.0)], 0.1),  # a clock that went backwards: not counted
        ([(0.1, 1.0), (math.inf, 1.0)], 0.1),
        ([(0.1, 1.0), (math.nan, 1.0)], 0.1),
    ],
)
def test_each_part_weighs_by_its_time_on_the_wire(parts: list[tuple[float, float]], expected: float) -> None:
    held = SenderHeld(tau_s=10)
    for held_s, wire_s in parts:
        held.add(held_s, wire_s)
    assert held.share == pytest.approx(expected, abs=1e-3)


def test_tau_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SenderHeld(tau_s=0)


@given(st.lists(st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)), max_size=30))
def test_the_share_is_a_share(parts: list[tuple[float, float]]) -> None:
    held = SenderHeld()
    for held_s, wire_s in parts:
        held.add(held_s, wire_s)
    assert held.share is None or 0.0 <= held.share <= 1.0


@given(st.floats(min_value=0, max_value=1), st.lists(st.floats(min_value=0.01, max_value=100), min_size=1))
def test_parts_held_alike_give_that_share(share: float, wires: list[float]) -> None:
    held = SenderHeld()
    for wire_s in wires:
        held.add(share * wire_s, wire_s)
    assert held.share == pytest.approx(share, abs=1e-9)
