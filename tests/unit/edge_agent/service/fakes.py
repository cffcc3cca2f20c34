"""Tiny fakes for the agent service's ports (edge_agent/service/ports.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.engine import EngineStats, Limits
from edge_agent.service.ports import HostSample, Verdict


class FakeEngine:
    def __init__(self) -> None:
        self.queued: list[Path] = []  # distinct paths in the queue, like the journal
        self.calls: list[Path] = []  # every enqueue call
        self.already_stored: set[str] = set()
        self.limits: list[Limits] = []
        self.assigned: list[bool] = []
        self.fail_with: Exception | None = None
        self.started = False
        self.snapshot = EngineStats()
        self.closed = False

    def enqueue(self, path: Path) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append(path)
        if path.name in self.already_stored:
            return False
        if path not in self.queued:  # like the journal: one queue entry per path
            self.queued.append(path)
        return True

    def set_limits(self, limits: Limits) -> None:
        self.limits.append(limits)

    def set_assigned(self, assigned: bool) -> None:
        self.assigned.append(assigned)

    def stats(self) -> EngineStats:
        return self.snapshot

    def start(self) -> None:
        self.started = True

    def stop(self, timeout: float) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.rtt_s: float | None = None

    def round_trip_s(self) -> float | None:
        return self.rtt_s

    def publish(self, message: Any) -> None:
        self.messages.append(message)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


class FakeHost:
    """The host's readings; tests set ``temperature_c`` and ``throttled`` (the local guard reads them)."""

    def __init__(self, disk_free: int = 10**12) -> None:
        self.disk_free = disk_free
        self.temperature_c: float | None = 55.5
        self.throttled = 0x50000
        self.own: tuple[float | None, int | None] = (None, None)

    def sample(self) -> HostSample:
        return HostSample(
            temperature_c=self.temperature_c,
            throttled=self.throttled,
            cpu_percent=12.5,
            mem_available_bytes=10**9,
            disk_free_bytes=self.disk_free,
            process_cpu_percent=self.own[0],
            process_rss_bytes=self.own[1],
        )


class FakeCheck:
    """Verdict per file name; READY unless told otherwise."""

    def __init__(self) -> None:
        self.verdicts: dict[str, tuple[Verdict, str]] = {}
        self.calls: list[str] = []

    def __call__(self, path: Path) -> tuple[Verdict, str]:
        self.calls.append(path.name)
        return self.verdicts.get(path.name, (Verdict.READY, ""))
