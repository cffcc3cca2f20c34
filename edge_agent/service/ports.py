"""The seams of the agent service: what it needs from the engine, the broker link and the host.

The service core talks only to these; unit tests use tiny fakes, the composition root the real adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from edge_agent.service.limits import UploadLimits
from fleet_protocol import EventKind, Message


@dataclass(frozen=True)
class UploadEvent:
    """An engine event as the service sees it (ENGINE_API.md §2 ``EngineEvent``)."""

    kind: EventKind
    path: Path
    key: str = ""
    original_bytes: int = 0
    stored_bytes: int = 0
    original_sha256: str = ""
    stored_as: str = ""
    duration_s: float = 0.0
    retries: int = 0
    reason: str = ""
    verified: bool = False  # only a completed AND verified upload lets retention touch the file


@dataclass(frozen=True)
class EngineSnapshot:
    backlog_files: int = 0
    backlog_bytes: int = 0
    backlog_oldest_age_s: float = 0.0
    active_uploads: int = 0
    throughput_bps: float = 0.0
    bytes_uploaded_total: int = 0
    retries_total: int = 0
    errors_total: int = 0


class EnginePort(Protocol):
    def enqueue(self, path: Path) -> bool:
        """Durable. False: already stored and verified with this size and mtime. Raises OSError or
        sqlite3.Error when the journal cannot be written (e.g. disk full)."""

    def set_limits(self, limits: UploadLimits) -> None: ...
    def stats(self) -> EngineSnapshot: ...
    def start(self) -> None: ...
    def stop(self, timeout: float) -> None: ...


class Publisher(Protocol):
    def publish(self, message: Message) -> None: ...


@dataclass(frozen=True)
class HostSample:
    temperature_c: float | None
    throttled: int
    cpu_percent: float
    mem_available_bytes: int
    disk_free_bytes: int


@dataclass(frozen=True)
class Capabilities:
    model: str
    cores: int
    ram_bytes: int
    disk_bytes: int
    flac_encode_bps: float


class HostProbe(Protocol):
    def sample(self) -> HostSample: ...


class Verdict(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"  # still being written: try again after it settles again
    REJECTED = "rejected"  # will never upload


#: the codec's ``check_finished`` as verdict + reason (for logs and the ``file_rejected`` event)
FinishedCheck = Callable[[Path], tuple[Verdict, str]]
