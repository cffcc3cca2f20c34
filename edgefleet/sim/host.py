"""A simulated Pi host behind the agent's ``HostProbe``: the thermal model driven by the upload load."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.service.ports import Capabilities, HostSample
from edgefleet.sim.profiles import HardwareProfile, busy_cores
from edgefleet.sim.thermal import ThermalParams, ThermalState, step, throttled_mask
from fleet_protocol.assignment import DEFAULT_PART_SIZE


class SimHost:
    def __init__(
        self,
        profile: HardwareProfile,
        thermal: ThermalParams,
        load: Callable[[], tuple[int, int]],  # (active uploads, compression level)
        now: float,
        part_size: Callable[[], int] = lambda: DEFAULT_PART_SIZE,
    ) -> None:
        self.profile = profile
        self.thermal = thermal
        self.load = load
        self.part_size = part_size
        self.state = ThermalState(thermal.idle_c)
        self.busy = 0.0
        self._last = now

    def advance(self, now: float) -> None:
        active, level = self.load()
        self.busy = busy_cores(self.profile, active, level)
        self.state = step(self.state, self.thermal, self.busy, now - self._last)
        self._last = now

    def sample(self) -> HostSample:
        active, _ = self.load()
        used = 150 * 1024 * 1024 + active * self.part_size()
        return HostSample(
            temperature_c=round(self.state.temperature_c, 2),
            throttled=throttled_mask(self.state, self.thermal),
            cpu_percent=round(100.0 * self.busy / self.profile.cores, 1),
            mem_available_bytes=max(0, self.profile.ram_bytes - used),
            disk_free_bytes=self.profile.disk_bytes // 2,
        )

    def capabilities(self) -> Capabilities:
        p = self.profile
        return Capabilities(p.model, p.cores, p.ram_bytes, p.disk_bytes, p.flac_encode_bps)
