"""Hardware profiles of the simulated Pis, and how upload work turns into busy CPU cores. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from edgefleet.sim.thermal import ThermalParams

MB = 1024 * 1024
PI4_FLAC_BPS = 14e6  # WAV bytes/s one Pi 4 core encodes at FLAC level 5 (order of magnitude)


@dataclass(frozen=True)
class HardwareProfile:
    key: str
    model: str  # as /proc/device-tree/model says
    cores: int
    ram_bytes: int
    speed: float  # CPU speed relative to a Pi 4
    thermal: ThermalParams
    stream_bps: float  # what one upload stream moves per second when the CPU keeps up
    disk_bytes: int = 32 * 1024 * MB

    @property
    def flac_encode_bps(self) -> float:
        return PI4_FLAC_BPS * self.speed


PROFILES: dict[str, HardwareProfile] = {
    p.key: p
    for p in (
        HardwareProfile("pi4-4g", "Raspberry Pi 4 Model B Rev 1.4", 4, 4096 * MB, 1.0, ThermalParams(), 2.0 * MB),
        HardwareProfile(
            "zero2w",
            "Raspberry Pi Zero 2 W Rev 1.0",
            4,
            512 * MB,
            0.45,
            ThermalParams(idle_rise_c=6.0, rise_per_core_c=9.0, time_constant_s=45.0),
            0.8 * MB,
        ),
        HardwareProfile(
            "pi3bplus",
            "Raspberry Pi 3 Model B Plus Rev 1.3",
            4,
            1024 * MB,
            0.6,
            ThermalParams(idle_rise_c=10.0, rise_per_core_c=9.0, time_constant_s=50.0),
            1.2 * MB,
        ),
        HardwareProfile("pi4-2g", "Raspberry Pi 4 Model B Rev 1.2", 4, 2048 * MB, 1.0, ThermalParams(), 2.0 * MB),
        HardwareProfile(
            "pi5-8g",
            "Raspberry Pi 5 Model B Rev 1.0",
            4,
            8192 * MB,
            2.2,
            ThermalParams(idle_rise_c=10.0, rise_per_core_c=9.0, time_constant_s=70.0),
            4.0 * MB,
        ),
    )
}
#: the order ``edgefleet simulate`` hands profiles out in (agent i gets ORDER[i % len])
ORDER: tuple[str, ...] = tuple(PROFILES)


def busy_cores(profile: HardwareProfile, active_streams: int, compression_level: int) -> float:
    """Busy cores for ``active_streams`` parallel uploads: each stream encodes (more CPU at higher FLAC
    levels, very little when uploading raw) and does TLS/HTTP; plus a small constant background load."""
    background = 0.1
    if active_streams <= 0:
        return background
    per_stream = 0.05 if compression_level < 0 else 0.08 + 0.03 * compression_level
    return min(float(profile.cores), background + active_streams * per_stream / profile.speed)
