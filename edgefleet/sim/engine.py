"""A simulated upload engine: recordings arrive, uploads progress at the profile's rate within the limits.

It honours the same ``Limits`` as the real engine (concurrency, windows, bandwidth cap, paused, upload_now;
the compression level changes the CPU load, see profiles.busy_cores) and reports the same events and stats,
so the controller and dashboard cannot tell it from a real agent. Time comes from ``advance(now)``: no clock,
no threads, no I/O inside.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from edge_agent.engine import EngineEvent, EngineStats, Limits
from edge_agent.engine.windows import is_open, parse_windows
from edge_agent.service.ports import EnginePort
from fleet_protocol.vocabulary import EventKind

MB = 1024 * 1024
FLAC_RATIO = 0.65  # stored / original for field recordings at 16 bits


@dataclass
class _File:
    name: str
    size: int
    arrived_at: float
    sent: float = 0.0
    started_at: float = 0.0


class SimEngine:
    def __init__(
        self,
        agent_id: str,
        prefix: str,
        stream_bps: float,
        on_event: Callable[[EngineEvent], None],
        *,
        rng: random.Random,
        arrival_every_s: float = 120.0,
        file_bytes: tuple[int, int] = (40 * MB, 400 * MB),
        initial_files: int = 20,
        now: float = 0.0,
        local_time_of_day: Callable[[], float] | None = None,
    ) -> None:
        self.agent_id, self.prefix = agent_id, prefix
        self.stream_bps = stream_bps
        self.on_event = on_event
        self.rng = rng
        self.arrival_every_s = arrival_every_s
        self.file_bytes = file_bytes
        self.limits = Limits()
        self.queue: deque[_File] = deque()
        self.active: list[_File] = []
        self.bytes_total = 0
        self._recent: deque[tuple[float, float]] = deque()  # (time, bytes) for the throughput average
        self._count = 0
        self._last = now
        self._next_arrival = now + arrival_every_s
        self._time_of_day = local_time_of_day or _local_time_of_day
        for _ in range(initial_files):
            self._arrive(now - rng.uniform(0, 3600))

    # -- EnginePort --------------------------------------------------------------------------------------------
    def enqueue(self, path: Path) -> bool:
        return True  # simulated agents have no real spool files

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits  # takes effect at the next advance()

    def set_assigned(self, assigned: bool) -> None:
        pass  # a simulated agent encodes at its assigned level

    def start(self) -> None:
        pass

    def stop(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> EngineStats:
        files = list(self.active) + list(self.queue)
        now = self._last
        window = [b for t, b in self._recent if now - t <= 10.0]
        return EngineStats(
            backlog_files=len(files),
            backlog_bytes=int(sum(f.size - f.sent for f in files)),
            oldest_age_s=max((now - f.arrived_at for f in files), default=0.0),
            active_uploads=len(self.active),
            throughput_bps=sum(window) / 10.0,
            bytes_uploaded_total=int(self.bytes_total),
        )

    # -- simulation --------------------------------------------------------------------------------------------
    def _arrive(self, at: float) -> None:
        self._count += 1
        stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%dT%H%M%S")
        size = self.rng.randint(*self.file_bytes)
        self.queue.append(_File(f"{self.agent_id}-{stamp}-{self._count:05d}.wav", size, at))

    @property
    def may_start(self) -> bool:
        lim = self.limits
        if lim.stopped:
            return False
        return lim.upload_now or is_open(parse_windows(lim.windows), self._time_of_day())

    def advance(self, now: float) -> None:
        dt = max(0.0, now - self._last)
        self._last = now
        while now >= self._next_arrival:
            self._arrive(self._next_arrival)
            self._next_arrival += self.arrival_every_s
        self._progress(now, dt)
        # Like the real engine, only the part in flight finishes: then a paused or narrowed engine stops a file
        # (its progress stays, as the journal keeps the parts) and it waits at the front of the queue.
        keep = self.limits.concurrency if self.may_start else 0
        while len(self.active) > keep:
            self.queue.appendleft(self.active.pop())
        while self.may_start and self.queue and len(self.active) < self.limits.concurrency:
            f = self.queue.popleft()
            f.started_at = now
            self.active.append(f)
            self._emit(EventKind.UPLOAD_STARTED, f)

    def _progress(self, now: float, dt: float) -> None:
        if not self.active or dt == 0:
            return
        rate = self.stream_bps * len(self.active)
        if self.limits.bandwidth_bps:
            rate = min(rate, float(self.limits.bandwidth_bps))
        share = rate * dt / len(self.active)
        self._recent.append((now, rate * dt))
        while self._recent and now - self._recent[0][0] > 10.0:
            self._recent.popleft()
        for f in list(self.active):
            f.sent = min(float(f.size), f.sent + share)
            if f.sent >= f.size:
                self.active.remove(f)
                self.bytes_total += f.size
                self._emit(EventKind.UPLOAD_COMPLETED, f, duration_s=now - f.started_at)

    def _emit(self, kind: EventKind, f: _File, duration_s: float = 0.0) -> None:
        done = kind == EventKind.UPLOAD_COMPLETED
        stored_as: Literal["flac", "raw"] = "raw" if self.limits.compression_level < 0 else "flac"
        stored = f.size if stored_as == "raw" else int(f.size * FLAC_RATIO)
        day = datetime.fromtimestamp(time.time(), UTC).strftime("%Y/%m/%d")
        key = f"{self.prefix}/{self.agent_id}/{day}/{Path(f.name).stem}.{'wav' if stored_as == 'raw' else 'flac'}"
        self.on_event(
            EngineEvent(
                kind,
                f"/simulated/{self.agent_id}/{f.name}",
                key=key,
                original_bytes=f.size,
                stored_bytes=stored if done else 0,
                stored_as=stored_as if done else "",
                duration_s=duration_s,
            )
        )


def _local_time_of_day() -> float:
    t = time.localtime()
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec


class CombinedEngine:
    """``--upload``: the real engine uploads the generated recordings, and a silent ``SimEngine`` adds the
    bulk backlog a field Pi would have, so that the CPU load (and the heat) follow the assignment just as
    without ``--upload``. Events come from the real engine only (they name real objects); stats are summed."""

    def __init__(self, real: EnginePort, simulated: SimEngine) -> None:
        self.real = real
        self.simulated = simulated

    def enqueue(self, path: Path) -> bool:
        return self.real.enqueue(path)

    def set_limits(self, limits: Limits) -> None:
        self.real.set_limits(limits)
        self.simulated.set_limits(limits)

    def set_assigned(self, assigned: bool) -> None:
        self.real.set_assigned(assigned)

    def stats(self) -> EngineStats:
        a, b = self.real.stats(), self.simulated.stats()
        return EngineStats(
            backlog_files=a.backlog_files + b.backlog_files,
            backlog_bytes=a.backlog_bytes + b.backlog_bytes,
            oldest_age_s=max(a.oldest_age_s, b.oldest_age_s),
            active_uploads=a.active_uploads + b.active_uploads,
            throughput_bps=a.throughput_bps + b.throughput_bps,
            bytes_uploaded_total=a.bytes_uploaded_total + b.bytes_uploaded_total,
            retries_total=a.retries_total,
            errors_total=a.errors_total,
        )

    def start(self) -> None:
        self.real.start()

    def stop(self, timeout: float) -> None:
        self.real.stop(timeout)

    def close(self) -> None:
        self.real.close()
