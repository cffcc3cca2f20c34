"""Generated field recordings for simulated agents (``edgefleet simulate --upload``).

Built like a real outdoor recording, because synthetic sines compress unrealistically well: preamp hiss,
a pink-ish ambience, wind rumble that swells in gusts, and bird calls (short frequency sweeps with a
harmonic). 16-bit PCM mono WAV; deterministic for a seed; about 60-75 % of the WAV size as FLAC.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def _shaped_noise(rng: np.random.Generator, n: int, exponent: float) -> Floats:
    """Noise with power ∝ 1/f**exponent (1 = pink, 2 = brown), normalised to unit RMS."""
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) or 1.0)


def _bird_calls(rng: np.random.Generator, n: int, rate: int) -> Floats:
    out = np.zeros(n)
    for _ in range(int(n / rate * 1.5)):  # about 1.5 calls a second
        length = int(rate * rng.uniform(0.04, 0.25))
        start = int(rng.integers(0, max(1, n - length)))
        t = np.arange(length) / rate
        f0, f1 = rng.uniform(2000, 6000), rng.uniform(1500, 7000)
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1] if t[-1] else 1.0))
        call = (np.sin(phase) + 0.3 * np.sin(2 * phase)) * np.hanning(length) * rng.uniform(0.05, 0.4)
        out[start : start + length] += call
    return out


def field_recording(seconds: float, rate: int = 48_000, seed: int = 0) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    n = max(1, int(seconds * rate))
    gusts = 0.5 + 0.5 * np.sin(2 * np.pi * np.arange(n) / (rate * rng.uniform(3, 9)) + rng.uniform(0, 6)) ** 2
    mix = (
        0.004 * rng.normal(size=n)
        + 0.02 * _shaped_noise(rng, n, 1.0)
        + 0.08 * _shaped_noise(rng, n, 2.0) * gusts
        + _bird_calls(rng, n, rate)
    )
    samples: npt.NDArray[np.int16] = np.clip(mix * 32767, -32768, 32767).astype(np.int16)
    return samples


def write_recording(path: Path, seconds: float, rate: int = 48_000, seed: int = 0) -> Path:
    """Write the WAV under a hidden temporary name and rename it: the spool never sees half a file."""
    samples = field_recording(seconds, rate, seed)
    tmp = path.with_name(f".{path.name}.part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    os.replace(tmp, path)
    return path
