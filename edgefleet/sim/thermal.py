"""A Raspberry Pi's temperature as a first-order thermal model, and the firmware's throttle bits. Pure.

The SoC temperature relaxes exponentially (time constant ``tau``) toward a target set by the ambient
temperature, an idle rise and a rise per busy core: ``T' = target + (T - target) * exp(-dt / tau)``. It is the
exact solution of the linear model for a constant load over ``dt``, so the step size does not matter.

The firmware (``vcgencmd get_throttled``) reacts like a real Pi: at the soft limit (80 °C) it sets
"soft temperature limit active" (0x8) and throttles (0x4); from 85 °C it also caps the ARM frequency (0x2).
Each condition also sets its sticky "has occurred" bit (same bit << 16) until reboot. Throttling lowers the
heat actually produced (the CPU runs slower), which is what keeps a real Pi from running away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from fleet_protocol.vocabulary import STICKY_SHIFT, ThrottleBit


@dataclass(frozen=True)
class ThermalParams:
    ambient_c: float = 25.0
    idle_rise_c: float = 8.0  # above ambient with the CPU idle
    rise_per_core_c: float = 12.0  # steady-state rise per fully busy core
    time_constant_s: float = 60.0
    soft_limit_c: float = 80.0
    cap_limit_c: float = 85.0
    throttled_heat: float = 0.75  # share of the heat still produced while throttled
    capped_heat: float = 0.5

    def hot_enclosure(self) -> ThermalParams:
        """A sealed box in the sun: 20 °C warmer around the Pi and much worse cooling."""
        return replace(
            self,
            ambient_c=self.ambient_c + 20.0,
            rise_per_core_c=self.rise_per_core_c * 1.8,
            time_constant_s=self.time_constant_s * 1.5,
        )

    def ceiling_c(self, cores: int) -> float:
        """The highest target temperature: every core busy, no throttling."""
        return self.ambient_c + self.idle_rise_c + self.rise_per_core_c * cores

    @property
    def idle_c(self) -> float:
        return self.ambient_c + self.idle_rise_c


@dataclass(frozen=True)
class ThermalState:
    temperature_c: float
    sticky: int = 0  # "has occurred" bits, already shifted


def _current_bits(temperature_c: float, params: ThermalParams) -> int:
    bits = 0
    if temperature_c >= params.soft_limit_c:
        bits |= ThrottleBit.SOFT_TEMP_LIMIT | ThrottleBit.THROTTLED
    if temperature_c >= params.cap_limit_c:
        bits |= ThrottleBit.FREQUENCY_CAPPED
    return bits


def heat_factor(temperature_c: float, params: ThermalParams) -> float:
    if temperature_c >= params.cap_limit_c:
        return params.capped_heat
    if temperature_c >= params.soft_limit_c:
        return params.throttled_heat
    return 1.0


def target_c(params: ThermalParams, busy_cores: float, temperature_c: float) -> float:
    return params.idle_c + params.rise_per_core_c * max(0.0, busy_cores) * heat_factor(temperature_c, params)


def step(state: ThermalState, params: ThermalParams, busy_cores: float, dt_s: float) -> ThermalState:
    """The state ``dt_s`` seconds later with ``busy_cores`` cores busy all that time."""
    if dt_s <= 0:
        return state
    target = target_c(params, busy_cores, state.temperature_c)
    temperature = target + (state.temperature_c - target) * math.exp(-dt_s / params.time_constant_s)
    current = _current_bits(temperature, params)
    return ThermalState(temperature, state.sticky | (current << STICKY_SHIFT))


def throttled_mask(state: ThermalState, params: ThermalParams) -> int:
    """The ``vcgencmd get_throttled`` mask: current conditions plus the sticky "has occurred" bits."""
    return _current_bits(state.temperature_c, params) | state.sticky
