"""What the engine reports: events (one per upload milestone), stats (telemetry) and a run report (CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fleet_protocol.vocabulary import EventKind


@dataclass(frozen=True)
class EngineEvent:
    """One upload milestone; the agent service turns it into a ``fleet_protocol.Event``.

    ``UPLOAD_COMPLETED`` is sent only after the object was completed AND verified (size and multipart ETag);
    it is the only event on which a local file may be deleted.
    """

    kind: EventKind
    file: str  # absolute path of the local file
    key: str = ""
    original_bytes: int = 0
    stored_bytes: int = 0
    original_sha256: str = ""
    stored_as: Literal["flac", "raw", "zstd", ""] = ""
    duration_s: float = 0.0
    retries: int = 0
    reason: str = ""


@dataclass(frozen=True)
class EngineStats:
    backlog_files: int = 0
    backlog_bytes: int = 0
    oldest_age_s: float = 0.0
    active_uploads: int = 0
    throughput_bps: float = 0.0  # the measured link rate (engine.linkrate): smoothed, while uploading; 0 = unknown
    bytes_uploaded_total: int = 0
    retries_total: int = 0
    errors_total: int = 0
    backlog_eta_s: float | None = None  # backlog_bytes / the measured link rate (None when unknown)
    effective_concurrency: int = 0  # parts in flight the thin-link guard allows (<= the assignment's)
    s3_ttfb_s: float | None = None  # the store's recent median time to first byte (None: not measured lately)
    # measured FLAC encode speed (WAV bytes/s of one encoder) and stored ÷ WAV ratio per level (engine.encoderate):
    # index = level, 0 = not measured, empty = none measured
    encode_bps_by_level: tuple[float, ...] = ()
    compression_ratio_by_level: tuple[float, ...] = ()


@dataclass(frozen=True)
class FileResult:
    file: str
    ok: bool
    key: str = ""
    reason: str = ""  # why it failed, or "already stored" / "" when ok
    original_bytes: int = 0
    stored_bytes: int = 0
    stored_as: Literal["flac", "raw", "zstd", ""] = ""
    raw_reason: str = ""  # stored raw: why FLAC could not hold it ("not a WAV", "32-bit float PCM", ...)


@dataclass(frozen=True)
class RunReport:
    results: tuple[FileResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)
