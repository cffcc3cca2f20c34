"""The encode-rate estimator: how fast this agent encodes each FLAC level and how small the result is (pure).

**What is measured.** At start, a short probe per level (``fleet_audio.probe.measure_encode_rates``) gives a
first speed: WAV bytes per second of one encoder, wall clock, so a CPU quota shows in it. Then every file that is
really encoded and stored adds a sample: the WAV bytes fed to libFLAC over the wall time spent converting and
encoding them (reading and sending not counted), and the stored bytes over the original bytes (the ratio).

**How it is smoothed.** Per level, an exponentially weighted moving average whose weight grows with the file's
size: ``a = 1 - exp(-wav_bytes / WEIGHT_BYTES)``, ``estimate += a * (sample - estimate)``. A 64 MiB file moves
the average 63 % of the way, a 1 MiB one 1.5 %: a long recording says more than a short one, and one odd file
does not swing the plan. The first sample of a level is taken as it is (a ratio has no probe: the probe's
synthetic audio does not compress like real recordings). Samples that are not finite and positive are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fleet_protocol.assignment import MAX_COMPRESSION_LEVEL

WEIGHT_BYTES = 64 * 1024 * 1024
LEVELS = range(MAX_COMPRESSION_LEVEL + 1)


def _usable(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values)


def _fold(table: dict[int, float], level: int, sample: float, weight: float) -> None:
    if level not in table:
        table[level] = sample
    else:
        table[level] += weight * (sample - table[level])


class EncodeRates:
    """Per-level encode speed (WAV bytes/s of one encoder) and stored ÷ WAV ratio; not thread-safe."""

    def __init__(self, probed: Mapping[int, float] | None = None, weight_bytes: float = WEIGHT_BYTES) -> None:
        if weight_bytes <= 0:
            raise ValueError(f"weight_bytes must be > 0, got {weight_bytes}")
        self._weight = weight_bytes
        self._rate: dict[int, float] = {}
        self._ratio: dict[int, float] = {}
        self.add_probed(probed or {})

    def add_probed(self, probed: Mapping[int, float]) -> None:
        """A probe's speeds, for the levels no real encode has measured yet (a probe can end after a file)."""
        for level, rate in probed.items():
            if level in LEVELS and _usable(rate):
                self._rate.setdefault(level, float(rate))

    def observe(self, level: int, wav_bytes: int, seconds: float, stored_bytes: int, original_bytes: int) -> None:
        """One file encoded at ``level``: ``wav_bytes`` fed to the encoder in ``seconds``; stored size vs original."""
        if level not in LEVELS or not _usable(wav_bytes):
            return
        weight = 1.0 - math.exp(-wav_bytes / self._weight)
        if _usable(seconds):
            _fold(self._rate, level, wav_bytes / seconds, weight)
        if _usable(stored_bytes, original_bytes):
            _fold(self._ratio, level, stored_bytes / original_bytes, weight)

    def rates(self) -> dict[int, float]:
        return dict(self._rate)

    def ratios(self) -> dict[int, float]:
        return dict(self._ratio)


def as_list(values: Mapping[int, float], high: float) -> list[float]:
    """The wire's form: one value per level 0..8 (index = level), each in 0..``high``, 0 = not measured; empty
    when none is."""
    if not values:
        return []
    return [min(high, float(v)) if _usable(v := values.get(level, 0.0)) else 0.0 for level in LEVELS]
