"""Live updates: one poller shared by every SSE client, and the per-client diff of the fleet.

The hub reads a ``FleetSnapshot`` every ``interval_s`` while at least one client listens, and stops
when the last one leaves. Each client keeps the rows it has already been sent and receives only
the rows that changed (``fleet_delta``), so a 2,000-agent fleet costs one query per tick, not one
per client, and little bandwidth once the first full snapshot is out.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio.to_thread

from dashboard.readmodel import AgentRow, FleetSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetDelta:
    changed: list[AgentRow]
    removed: list[str]


def fleet_delta(previous: Mapping[str, AgentRow] | None, rows: Sequence[AgentRow]) -> FleetDelta:
    """Rows that are new or differ from ``previous``, and ids that disappeared (pure)."""
    if previous is None:
        return FleetDelta(changed=list(rows), removed=[])
    current_ids = {r.agent_id for r in rows}
    return FleetDelta(
        changed=[r for r in rows if previous.get(r.agent_id) != r],
        removed=sorted(set(previous) - current_ids),
    )


class LiveHub:
    def __init__(self, load: Callable[[], FleetSnapshot], interval_s: float) -> None:
        self._load = load
        self._interval_s = interval_s
        self._subscribers = 0
        self._snapshot: FleetSnapshot | None = None
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def subscribers(self) -> int:
        return self._subscribers

    def _bind(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._changed is None:  # first use, or a new event loop (tests)
            self._loop, self._changed, self._task, self._snapshot = loop, asyncio.Event(), None, None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._poll(), name="dashboard-live-poller")
        return self._changed

    async def _poll(self) -> None:
        while self._subscribers > 0:
            try:
                snapshot = await anyio.to_thread.run_sync(self._load)
            except Exception:  # the database may be restarting: keep the stream, try again
                log.exception("live update: reading the fleet failed")
            else:
                self._snapshot = snapshot
                changed, self._changed = self._changed, asyncio.Event()
                if changed is not None:
                    changed.set()
            await asyncio.sleep(self._interval_s)

    async def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        """Every new snapshot, starting with the next one read (or the current one, if any)."""
        self._subscribers += 1
        try:
            waiting = self._bind()
            if self._snapshot is not None:
                yield self._snapshot
            while True:
                await waiting.wait()
                waiting = self._changed or waiting
                if self._snapshot is not None:
                    yield self._snapshot
        finally:
            self._subscribers -= 1


class SnapshotCache:
    """The latest fleet snapshot, read again once it is ``max_age_s`` old (0 = on every call).

    Pages, the API, ``/metrics`` and the live poller share it, so a burst of requests costs one read of
    the fleet. Concurrent callers that find it stale wait for one read instead of each doing their own.

    ``stale_s`` > 0: a snapshot older than ``max_age_s`` but not ``max_age_s + stale_s`` is returned at once
    while one background thread reads the fleet again (stale-while-revalidate): at 10,000 agents a fleet read
    costs a few hundred ms of CPU, which then no request waits for. Older than that, or none yet, or
    ``max_age_s`` = 0: read inline.
    A background read that fails is logged and leaves the snapshot as it was.
    """

    def __init__(
        self, load: Callable[[], FleetSnapshot], max_age_s: float, clock: Callable[[], float], stale_s: float = 0.0
    ) -> None:
        self._load = load
        self._max_age_s = max_age_s
        self._stale_s = stale_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: FleetSnapshot | None = None
        self._read_at = 0.0
        self._refreshing = False
        self.background_reads = 0

    def get(self) -> FleetSnapshot:
        with self._lock:
            now = self._clock()
            age = now - self._read_at
            if self._snapshot is not None and age < self._max_age_s:
                return self._snapshot
            if self._snapshot is not None and self._max_age_s > 0 and age < self._max_age_s + self._stale_s:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, name="fleet-snapshot", daemon=True).start()
                return self._snapshot
            self._snapshot, self._read_at = self._load(), now
            return self._snapshot

    def _refresh(self) -> None:
        started = self._clock()
        try:
            snapshot = self._load()
        except Exception:  # the database may be away: the next stale reader reads inline and says so
            log.exception("background fleet read failed; the snapshot stays as it was")
            snapshot = None
        with self._lock:
            if snapshot is not None:
                self._snapshot, self._read_at = snapshot, started
                self.background_reads += 1
            self._refreshing = False
