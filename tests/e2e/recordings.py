"""The campaign's recordings: a deterministic plan of mixed sizes and formats, written with the realistic corpus.

Sizes are chosen for the CI time budget (a few hundred MB in all on 2 cores) while still covering the cases:
tiny files, one-part files, and files whose FLAC is larger than the 5 MiB part size (multipart).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.corpus import bext_payload, list_info_payload, write_wav

MB = 1_000_000


@dataclass(frozen=True)
class Recording:
    agent_id: str
    name: str  # file name, e.g. rec-03.wav
    seconds: float
    channels: int
    bits: int
    kind: str
    seed: int
    wave: int  # when it "finishes recording": wave k lands in the spool k * wave interval after the start
    with_chunks: bool = False

    @property
    def wav_bytes(self) -> int:
        return round(self.seconds * 48_000) * self.channels * self.bits // 8


# (seconds, channels, bits): small (0.2-1.5 MB), medium (3-5 MB) and large (9-12 MB, multipart) recordings.
SMALL = [(2.0, 1, 16), (5.0, 1, 16), (3.5, 1, 24), (8.0, 1, 16), (2.5, 2, 16), (4.0, 1, 24)]
MEDIUM = [(20.0, 2, 16), (30.0, 1, 24), (45.0, 1, 16)]
LARGE = [(30.0, 2, 24), (55.0, 2, 16), (40.0, 2, 24)]


def plan(agent_ids: list[str], per_agent: int = 20, waves: int = 4, large: int = 2, medium: int = 3) -> list[Recording]:
    rng = random.Random(20261130)
    out: list[Recording] = []
    for a, agent_id in enumerate(agent_ids):
        shapes = [rng.choice(LARGE) for _ in range(large)] + [rng.choice(MEDIUM) for _ in range(medium)]
        shapes += [rng.choice(SMALL) for _ in range(per_agent - len(shapes))]
        rng.shuffle(shapes)
        for i, (seconds, channels, bits) in enumerate(shapes):
            out.append(
                Recording(
                    agent_id=agent_id,
                    name=f"{agent_id}-rec-{i:02d}.wav",
                    seconds=seconds,
                    channels=channels,
                    bits=bits,
                    kind="field" if (i + a) % 4 else "music",
                    seed=a * 1000 + i,
                    wave=i % waves,
                    with_chunks=i % 7 == 3,
                )
            )
    return out


def write(rec: Recording, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    chunks = []
    if rec.with_chunks:
        chunks = [(b"bext", bext_payload(rec.name), "before"), (b"LIST", list_info_payload(INAM=rec.name), "after")]
    return write_wav(
        folder / rec.name,
        seconds=rec.seconds,
        rate=48_000,
        channels=rec.channels,
        bits=rec.bits,
        kind=rec.kind,  # type: ignore[arg-type]
        extra_chunks=chunks,
        seed=rec.seed,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Recorder(threading.Thread):
    """Writes the recordings wave by wave in the background (like the recorder on a Pi, it costs CPU while the
    agents upload) and lands wave ``k`` in the spools ``k * wave_s`` after :meth:`begin`, or as soon as it is
    written if the writing is slower (rename on one file system: the files appear finished at once)."""

    def __init__(self, recordings: list[Recording], folder: Path, wave_s: float) -> None:
        super().__init__(name="e2e-recorder", daemon=True)
        self.recordings = sorted(recordings, key=lambda r: r.wave)
        self.folder = folder
        self.wave_s = wave_s
        self.sha256: dict[str, str] = {}
        self.landed: list[tuple[float, int]] = []  # (seconds after begin, wave)
        self.error: BaseException | None = None
        self._spool_of: Callable[[str], Path] | None = None
        self._began: float | None = None
        self._go = threading.Event()

    def begin(self, spool_of: Callable[[str], Path]) -> None:
        self._spool_of = spool_of
        self._began = time.monotonic()
        self._go.set()

    def run(self) -> None:
        try:
            for wave in sorted({r.wave for r in self.recordings}):
                batch = [r for r in self.recordings if r.wave == wave]
                for rec in batch:
                    self.sha256[rec.name] = sha256(write(rec, self.folder))
                self._go.wait()
                assert self._began is not None
                assert self._spool_of is not None
                time.sleep(max(0.0, self._began + wave * self.wave_s - time.monotonic()))
                for rec in batch:
                    spool = self._spool_of(rec.agent_id)
                    spool.mkdir(parents=True, exist_ok=True)  # the agent may not have made it yet (a slow start)
                    os.rename(self.folder / rec.name, spool / rec.name)
                self.landed.append((time.monotonic() - self._began, wave))
        except BaseException as exc:
            self.error = exc


def write_truncated(path: Path) -> Path:
    """A recording cut short (power loss while writing): the RIFF and data sizes promise more than the file has."""
    write_wav(path, seconds=2.0, rate=48_000, channels=1, bits=16, seed=99)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path


def write_not_wav(path: Path) -> Path:
    """Something else behind a ``.wav`` name (here: an MP3-like frame header and noise)."""
    rng = random.Random(7)
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(rng.randrange(256) for _ in range(300_000)))
    return path
