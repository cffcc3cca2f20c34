"""Realistic test recordings, deterministic from a seed, written block by block (a 2 GB file needs no 2 GB of RAM).

Sine waves compress far better than real recordings. These mixes are built like real ones: a noise floor
(white preamp hiss + pink noise), wind rumble (brown-ish noise with gusts), bird calls (FM chirp series),
voice-like formant bursts (harmonics of a wandering pitch shaped by formants, syllables and pauses), or music-like
chords (decaying harmonics). With FLAC level 5 (stereo 48 kHz, measured): 16-bit field 67 %, voice 63 %, music
62 %; 24-bit 75-78 % (the noise floor fills the low bits, as in real 24-bit recordings); 8-bit 28-38 %; "noise"
is a worst case at ~85 %. tests/unit/fleet_audio/test_corpus.py keeps 16-bit within 55-75 %.

    from tests.corpus import write_wav, chunk
    write_wav(path, seconds=10, rate=48000, channels=2, bits=24, kind="voice",
              extra_chunks=[(b"bext", b"...", "before"), (b"LIST", b"INFO...", "after")], seed=3)
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Kind = Literal["field", "voice", "music", "noise"]
Floats = npt.NDArray[np.float64]
BLOCK = 4096  # synthesis block (frames); fixed so the output never depends on how the caller writes
PCM_GUID = b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
FLOAT_GUID = b"\x03\x00" + PCM_GUID[2:]
# Linear gain of each part of the mix per kind: (hiss, pink, wind, birds, voice, music).
_MIX: dict[str, tuple[float, ...]] = {
    "field": (0.004, 0.02, 0.10, 0.25, 0.0, 0.0),
    "voice": (0.003, 0.01, 0.02, 0.0, 0.35, 0.0),
    "music": (0.003, 0.008, 0.0, 0.0, 0.0, 0.30),
    "noise": (0.05, 0.10, 0.05, 0.0, 0.0, 0.0),
}


def chunk(cid: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: id, size, payload, pad byte if the size is odd."""
    return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def bext_payload(description: str = "edgefleet test recording") -> bytes:
    """A 602-byte BWF bext chunk body (description, originator, date/time, version 1)."""
    body = description.encode()[:256].ljust(256, b"\0") + b"edgefleet".ljust(32, b"\0") + b"".ljust(32, b"\0")
    body += b"2026-11-30" + b"12:00:00" + struct.pack("<QH", 0, 1)
    return body.ljust(602, b"\0")


def list_info_payload(**fields: str) -> bytes:
    parts = [b"INFO"]
    for key, value in fields.items():
        parts.append(chunk(key.encode()[:4].ljust(4, b" "), value.encode() + b"\0"))
    return b"".join(parts)


@functools.cache
def _held_index(n: int, k: int, phase: int) -> npt.NDArray[np.int64]:
    """For samples ``t0 .. t0+n-1`` with ``t0 % 2**k == phase``: which value of octave ``k`` (one per ``2**k``
    samples, counted from the one of ``t0``) each of them holds. Blocks start at multiples of ``BLOCK``: a
    handful of phases, so the arrays are made once."""
    index: npt.NDArray[np.int64] = (phase + np.arange(n)) >> k
    return index


@dataclass
class _Octaves:
    """Voss-McCartney noise: one random value per octave, held for 2**k samples; weights shape the spectrum."""

    weights: npt.NDArray[np.float64]
    last_index: npt.NDArray[np.int64]
    last_value: npt.NDArray[np.float64]

    @classmethod
    def new(cls, octaves: int, tilt: float) -> _Octaves:
        weights = np.array([2.0 ** (k * tilt) for k in range(octaves)])
        return cls(weights / np.sqrt(np.sum(weights**2)), np.full(octaves, -1), np.zeros(octaves))

    def render(self, rng: np.random.Generator, t0: int, n: int) -> npt.NDArray[np.float64]:
        out = np.zeros(n)
        for k, weight in enumerate(self.weights):
            first, last = t0 >> k, (t0 + n - 1) >> k
            values = rng.standard_normal(last - first + 1)
            if self.last_index[k] == first:
                values[0] = self.last_value[k]
            self.last_index[k], self.last_value[k] = last, values[-1]
            # each value weighted once, then held: the same products, so the same bytes, as weighting every sample
            out += (weight * values)[_held_index(n, k, t0 & ((1 << k) - 1))]
        return out


@dataclass
class _Event:
    start: int  # global frame
    length: int
    f0: float
    f1: float
    amp: float


class _Synth:
    def __init__(self, kind: Kind, rate: int, channels: int, seed: int) -> None:
        if kind not in _MIX:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind, self.rate, self.channels = kind, rate, channels
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.pink = [_Octaves.new(12, 0.0) for _ in range(channels)]
        self.wind = _Octaves.new(14, 0.5)
        self.gust = _Octaves.new(16, 1.0)
        self.events: list[_Event] = []
        self.phase = 0.0  # voice/music fundamental phase (cycles)
        self.pitch = 140.0
        self.note_start = self.note_end = 0
        self.notes = np.array([220.0, 277.2, 329.6])

    def _birds(self, n: int) -> npt.NDArray[np.float64]:
        rng, rate = self.rng, self.rate
        if rng.random() < n / rate * 0.6:  # ~0.6 calls per second
            start = self.t + int(rng.integers(0, n))
            f0 = float(rng.uniform(2000, 5000))
            for _call in range(int(rng.integers(3, 8))):
                length = int(rate * rng.uniform(0.04, 0.15))
                f1 = f0 * float(rng.uniform(0.6, 1.6))
                self.events.append(_Event(start, length, f0, min(f1, 0.45 * rate), float(rng.uniform(0.2, 1.0))))
                start += length + int(rate * rng.uniform(0.03, 0.12))
        out = np.zeros(n)
        for ev in self.events:
            lo, hi = max(ev.start, self.t), min(ev.start + ev.length, self.t + n)
            if lo >= hi:
                continue
            tau = (np.arange(lo, hi) - ev.start) / rate
            dur = ev.length / rate
            phase = 2 * np.pi * (ev.f0 * tau + (ev.f1 - ev.f0) * tau**2 / (2 * dur))
            out[lo - self.t : hi - self.t] += ev.amp * np.sin(phase) * np.sin(np.pi * tau / dur) ** 2
        self.events = [ev for ev in self.events if ev.start + ev.length > self.t + n]
        return out

    def _harmonics(self, n: int, pitch: Floats, amps: Floats) -> Floats:
        cycles = self.phase + np.cumsum(pitch) / self.rate
        self.phase = float(cycles[-1] % 1.0)
        k = np.arange(1, len(amps) + 1)
        out: Floats = np.sin(2 * np.pi * np.outer(cycles, k)) @ amps
        return out

    def _voice(self, n: int) -> npt.NDArray[np.float64]:
        rng = self.rng
        target = float(rng.uniform(100, 220))
        pitch = self.pitch + (target - self.pitch) * np.linspace(0, 1, n) ** 2
        self.pitch = target
        pitch = np.clip(pitch, 1.0, 0.2 * self.rate)
        harmonics = int(min(40, 0.45 * self.rate / max(self.pitch, 1.0)))
        freqs = self.pitch * np.arange(1, harmonics + 1)
        f1, f2 = rng.uniform(300, 900), rng.uniform(900, 2500)
        envelope = np.exp(-(((freqs - f1) / 150) ** 2)) + 0.6 * np.exp(-(((freqs - f2) / 250) ** 2)) + 0.02
        talking = float(rng.random() < 0.7)
        syllable = np.sin(np.pi * np.linspace(0, 1, n)) ** 2 * talking
        amps: Floats = np.asarray(envelope / harmonics**0.5, dtype=np.float64)
        out: Floats = syllable * self._harmonics(n, pitch, amps)
        return out

    def _music(self, n: int) -> npt.NDArray[np.float64]:
        rng = self.rng
        if self.t >= self.note_end:
            root = 110.0 * 2 ** (int(rng.integers(0, 24)) / 12)
            self.notes = root * np.array([1.0, 2 ** (4 / 12), 2 ** (7 / 12), 2.0])
            self.note_start = self.t
            self.note_end = self.t + int(self.rate * rng.uniform(0.3, 1.0))
        out: Floats = np.zeros(n)
        seconds = (self.t + np.arange(n)) / self.rate
        decay = np.exp(-(self.t + np.arange(n) - self.note_start) / self.rate * 2.0)
        for note in self.notes:
            harmonics = max(1, int(min(12, 0.45 * self.rate / note)))
            amps = 1.0 / np.arange(1, harmonics + 1) ** 1.5
            out += decay * (np.sin(2 * np.pi * note * np.outer(seconds, np.arange(1, harmonics + 1))) @ amps)
        out /= len(self.notes)
        return out

    def block(self) -> npt.NDArray[np.float64]:
        n = BLOCK
        hiss, pink, wind, birds, voice, music = _MIX[self.kind]
        shared = np.zeros(n)
        if wind:
            gust = 0.5 + 0.5 * np.tanh(2 * self.gust.render(self.rng, self.t, n))
            shared += wind * gust * self.wind.render(self.rng, self.t, n)
        if birds:
            shared += birds * self._birds(n)
        if voice:
            shared += voice * self._voice(n)
        if music:
            shared += music * self._music(n)
        out = np.empty((n, self.channels))
        for c in range(self.channels):
            gain = 1.0 - 0.15 * c
            out[:, c] = gain * shared + pink * self.pink[c].render(self.rng, self.t, n)
            out[:, c] += hiss * self.rng.standard_normal(n)
        self.t += n
        return np.clip(out, -1.0, 1.0)


def samples(seconds: float, rate: int, channels: int, kind: Kind = "field", seed: int = 0) -> Iterator[Floats]:
    """Float samples in [-1, 1], shape (frames, channels), in blocks; exactly round(seconds * rate) frames."""
    synth = _Synth(kind, rate, channels, seed)
    remaining = round(seconds * rate)
    while remaining > 0:
        block = synth.block()[:remaining]
        remaining -= len(block)
        yield block


def encode_pcm(block: npt.NDArray[np.float64], bits: int, float32: bool = False) -> bytes:
    if float32:
        return block.astype("<f4").tobytes()
    if bits == 8:
        return (np.round(block * 127) + 128).astype(np.uint8).tobytes()
    full = float(2 ** (bits - 1) - 1)
    ints = np.round(block * full).astype("<i4")
    if bits == 16:
        return ints.astype("<i2").tobytes()
    if bits == 24:
        return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    if bits == 32:
        return ints.tobytes()
    raise ValueError(f"unsupported bits {bits}")


def fmt_payload(rate: int, channels: int, bits: int, float32: bool = False, extensible: bool = False) -> bytes:
    block_align = channels * bits // 8
    tag = 3 if float32 else 1
    base = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block_align, block_align, bits)
    if extensible:
        mask = {1: 0x4, 2: 0x3}.get(channels, 0)
        return base + struct.pack("<HHI", 22, bits, mask) + (FLOAT_GUID if float32 else PCM_GUID)
    return base + (struct.pack("<H", 0) if float32 else b"")


def write_wav(
    path: Path,
    seconds: float,
    rate: int = 48000,
    channels: int = 1,
    bits: int = 16,
    kind: Kind = "field",
    extra_chunks: Sequence[tuple[bytes, bytes, str]] = (),
    float32: bool = False,
    extensible: bool = False,
    seed: int = 0,
) -> Path:
    """Write a WAV. ``extra_chunks``: (id, payload, "before"|"after"): before the fmt chunk or after the data."""
    if float32:
        bits = 32
    frames = round(seconds * rate)
    data_size = frames * channels * bits // 8
    before = b"".join(chunk(c, p) for c, p, where in extra_chunks if where == "before")
    after = b"".join(chunk(c, p) for c, p, where in extra_chunks if where == "after")
    if any(where not in ("before", "after") for _, _, where in extra_chunks):
        raise ValueError("extra chunk position must be 'before' or 'after'")
    fmt = chunk(b"fmt ", fmt_payload(rate, channels, bits, float32, extensible))
    if float32:
        fmt += chunk(b"fact", struct.pack("<I", frames))
    riff_size = 4 + len(before) + len(fmt) + 8 + data_size + (data_size & 1) + len(after)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + before + fmt)
        f.write(b"data" + struct.pack("<I", data_size))
        for block in samples(seconds, rate, channels, kind, seed):
            f.write(encode_pcm(block, bits, float32))
        if data_size & 1:
            f.write(b"\0")
        f.write(after)
    return path
