"""The seams of the agent service: what it needs from the engine, the broker link and the host.

The service core talks only to these; unit tests use tiny fakes, the composition root the real adapters.
Values crossing the engine seam are the engine core's own frozen dataclasses (``Limits``, ``EngineStats``,
``EngineEvent`` from the pure ``edge_agent.engine`` package, docs/upload-engine.md); ``EngineEvent.file`` is the
absolute path and ``UPLOAD_COMPLETED`` is only ever sent for a completed AND verified object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from edge_agent.engine import EngineStats, Limits
from fleet_protocol.messages import Message


class EnginePort(Protocol):
    def enqueue(self, path: Path) -> bool:
        """Durable. False: already stored and verified with this size and mtime. Raises OSError or
        sqlite3.Error when the journal cannot be written (e.g. disk full)."""
        ...

    def set_limits(self, limits: Limits) -> None: ...  # takes effect at once; parts in flight finish
    def set_assigned(self, assigned: bool) -> None:
        """Whether the limits come from the controller's assignment: then each file is FLAC at its level or raw
        (the agent's own mix); before one, the agent's cost model chooses the level (edge_agent.transfer.encoding)."""
        ...

    def stats(self) -> EngineStats: ...
    def start(self) -> None: ...
    def stop(self, timeout: float) -> None: ...
    def close(self) -> None: ...


class Publisher(Protocol):
    def publish(self, message: Message) -> None: ...


@runtime_checkable
class MeasuresRoundTrip(Protocol):
    """A publisher that times its round trip to the broker (the real MQTT link does)."""

    def round_trip_s(self) -> float | None: ...


@dataclass(frozen=True)
class HostSample:
    temperature_c: float | None
    throttled: int
    cpu_percent: float
    mem_available_bytes: int
    disk_free_bytes: int
    #: the agent process's own CPU (% of one core, so up to 100 × cores) and resident memory; None: not measured
    process_cpu_percent: float | None = None
    process_rss_bytes: int | None = None


@dataclass(frozen=True)
class Capabilities:
    model: str
    cores: int
    ram_bytes: int
    disk_bytes: int
    flac_encode_bps: float
    memory_limit_bytes: int = 0  # cgroup limit, else RAM; 0 = unknown
    baseline_rss_bytes: int = 0  # resident memory at start, before any part buffer; 0 = unknown
    # the start-up probe's encode speed per FLAC level (WAV bytes/s of one encoder) and how many encoders run
    # side by side at it (edge_agent.service.host.encode_cores); empty / 0 = not measured
    encode_bps_by_level: Mapping[int, float] = field(default_factory=dict)
    encode_cores: float = 0.0


class HostProbe(Protocol):
    def sample(self) -> HostSample: ...


class Verdict(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"  # still being written: try again after it settles again
    REJECTED = "rejected"  # will never upload


#: the codec's ``check_finished`` as verdict + reason (for logs and the ``file_rejected`` event)
FinishedCheck = Callable[[Path], tuple[Verdict, str]]
