"""The firmware's throttle bits (``Telemetry.throttled``) in words: one table for the policy and the dashboard."""

from __future__ import annotations

import pytest

from controller.policy.inputs import PolicyConfig
from fleet_plan.thermal import CRITICAL, WARM, firmware_words, level_for
from fleet_protocol.vocabulary import STICKY_SHIFT, ThrottleBit, throttle_history_words, throttle_words


@pytest.mark.parametrize(
    ("mask", "now", "past"),
    [
        (0, [], []),
        (0x1, ["under-voltage"], []),
        (0x4, ["throttled"], []),
        (0xF, ["under-voltage", "frequency capped", "throttled", "soft temperature limit"], []),
        (0x50000, [], ["under-voltage", "throttled"]),
        (0x50005, ["under-voltage", "throttled"], ["under-voltage", "throttled"]),
        (0x80000, [], ["soft temperature limit"]),
        (0x100000, [], []),  # bits the firmware does not define say nothing
    ],
)
def test_throttle_words(mask: int, now: list[str], past: list[str]) -> None:
    assert throttle_words(mask) == now
    assert throttle_history_words(mask) == past


@pytest.mark.parametrize(
    ("bit", "level", "words"),
    [
        (ThrottleBit.UNDER_VOLTAGE, CRITICAL, ["under-voltage"]),
        (ThrottleBit.FREQUENCY_CAPPED, CRITICAL, ["frequency capped"]),
        (ThrottleBit.THROTTLED, CRITICAL, ["throttled"]),
        (ThrottleBit.SOFT_TEMP_LIMIT, WARM, []),  # warm, not a reason to pause
        (ThrottleBit.THROTTLED << STICKY_SHIFT, 0, []),  # only "now" counts for the policy
    ],
)
def test_the_policy_reads_the_same_bits(bit: int, level: int, words: list[str]) -> None:
    assert level_for(None, bit, PolicyConfig()) == level
    assert firmware_words(bit) == words
