"""A recorder for agents that run as real ``edgefleet agent`` processes: writes realistic WAVs into spools.

Used only when ``edgefleet simulate`` (which records by itself) is not available. The audio comes from the
repository's realistic corpus generator (``tests/corpus.py``: noise floor, wind, birds, voices, music) when
the demo runs from a checkout; otherwise from a simple pink-ish noise fallback, which is also realistic in
size (it does not compress like a sine). Files are written in place like a real recorder does, so the
agents' "finished?" check (settle time + RIFF sizes) is exercised.
"""

from __future__ import annotations

import logging
import random
import struct
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)
Writer = Callable[..., Path]
KINDS = ("field", "voice", "music")


def _fallback_write(path: Path, seconds: float, rate: int, channels: int, bits: int, seed: int, **_: object) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = round(seconds * rate)
    data_size = frames * channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_size) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size))
        level = 0.0
        for start in range(0, frames, 65536):
            n = min(65536, frames - start)
            walk = np.cumsum(rng.normal(0, 30, (n, channels)), axis=0) + level
            level = float(walk[-1, 0]) * 0.9
            pcm = np.clip(walk + rng.normal(0, 200, (n, channels)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            ints = pcm.astype("<i4")
            f.write(ints.astype("<i2").tobytes() if bits == 16 else ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes())
    return path


def corpus_writer() -> tuple[Writer, str]:
    from edgefleet.demo.parts import CHECKOUT

    if (CHECKOUT / "tests" / "corpus.py").exists() and str(CHECKOUT) not in sys.path:
        sys.path.append(str(CHECKOUT))
    try:
        from tests.corpus import write_wav
    except ImportError:
        return _fallback_write, "noise generator (tests/corpus.py not found)"
    return write_wav, "realistic corpus (tests/corpus.py)"


class Recorder(threading.Thread):
    """Every ``every_s`` (± 50 %) each spool gets a new recording of 5-40 s, mixed formats."""

    def __init__(self, spools: list[Path], stop: threading.Event, every_s: float = 40.0, seed: int = 7) -> None:
        super().__init__(name="demo-recorder", daemon=True)
        self.spools = spools
        self.stop_event = stop
        self.every_s = every_s
        self.rng = random.Random(seed)
        self.write, self.source = corpus_writer()
        self.written = 0

    def record_once(self, spool: Path) -> Path:
        spool.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = spool / f"rec-{stamp}-{self.rng.randrange(10**6):06d}.wav"
        channels, bits = self.rng.choice([(1, 16), (2, 16), (1, 24)])
        self.write(
            path,
            seconds=self.rng.uniform(5, 40),
            rate=48000,
            channels=channels,
            bits=bits,
            kind=self.rng.choice(KINDS),
            seed=self.rng.randrange(2**31),
        )
        self.written += 1
        return path

    def run(self) -> None:
        while not self.stop_event.is_set():
            for spool in self.spools:
                if self.stop_event.is_set():
                    return
                try:
                    self.record_once(spool)
                except OSError as exc:  # e.g. a full disk: the demo keeps running, agents report it
                    log.warning("recorder: %s", exc)
            self.stop_event.wait(self.every_s * self.rng.uniform(0.5, 1.5))
