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
import time
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


#: a background or inline read of the fleet may take at most this share of one core: a snapshot is kept at least
#: ``read CPU / READ_SHARE`` (at 10,000 agents a read costs ~0.5 s of CPU: kept ~5 s instead of 1 s)
READ_SHARE = 0.1


class SnapshotCache:
    """The latest fleet snapshot, read again once it is ``max_age_s`` old (0 = on every call).

    Pages, the API, ``/metrics`` and the live stream share it, so a burst of requests costs one read of
    the fleet. Concurrent callers that find it stale wait for one read instead of each doing their own.

    ``stale_s`` > 0: a snapshot older than its max age but not max age + ``stale_s`` is returned at once
    while one background thread reads the fleet again (stale-while-revalidate): at 10,000 agents a fleet read
    costs a few hundred ms of CPU, which then no request waits for. Older than that, or none yet, or
    ``max_age_s`` = 0: read inline. The max age grows with what a read costs (``READ_SHARE``; CPU time of the
    reading thread, ``cost_clock``), so a large fleet is not read over and over by a thread that then holds the
    interpreter most of the time, which every request would wait for.
    A background read that fails is logged and leaves the snapshot as it was.

    ``json()``: the snapshot as the JSON API sends it (``encode``), made once per snapshot; once asked for, the
    background read makes it for each new snapshot too, so no request serializes the whole fleet.
    """

    def __init__(
        self,
        load: Callable[[], FleetSnapshot],
        max_age_s: float,
        clock: Callable[[], float],
        stale_s: float = 0.0,
        *,
        encode: Callable[[FleetSnapshot], bytes] | None = None,
        cost_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._load = load
        self._encode = encode
        self._max_age_s = max_age_s
        self._stale_s = stale_s
        self._clock = clock
        self._cost_clock = cost_clock
        self._lock = threading.Lock()
        self._snapshot: FleetSnapshot | None = None
        self._json: tuple[FleetSnapshot, bytes] | None = None
        self._json_wanted = False
        self._read_at = 0.0
        self._read_cost = 0.0
        self._refreshing = False
        self.background_reads = 0

    @property
    def max_age_s(self) -> float:
        """How long a snapshot is served as fresh: ``max_age_s``, or longer when a read costs more (0 stays 0)."""
        if self._max_age_s <= 0:
            return 0.0
        return max(self._max_age_s, self._read_cost / READ_SHARE)

    def get(self) -> FleetSnapshot:
        with self._lock:
            now = self._clock()
            age, max_age = now - self._read_at, self.max_age_s
            if self._snapshot is not None and age < max_age:
                return self._snapshot
            if self._snapshot is not None and max_age > 0 and age < max_age + self._stale_s:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, name="fleet-snapshot", daemon=True).start()
                return self._snapshot
            self._snapshot, self._read_cost = self._timed(self._load)
            self._read_at = now
            return self._snapshot

    def json(self) -> bytes:
        """The snapshot ``get`` returns, encoded (``encode``); the same bytes for the same snapshot."""
        snapshot = self.get()
        with self._lock:
            self._json_wanted = True
            if self._json is not None and self._json[0] is snapshot:
                return self._json[1]
        body = self._encoded(snapshot)
        with self._lock:
            if self._snapshot is snapshot:
                self._json = (snapshot, body)
        return body

    def _encoded(self, snapshot: FleetSnapshot) -> bytes:
        if self._encode is None:
            raise RuntimeError("SnapshotCache.json needs an encode function")
        return self._encode(snapshot)

    def _timed(self, load: Callable[[], FleetSnapshot]) -> tuple[FleetSnapshot, float]:
        started = self._cost_clock()
        snapshot = load()
        return snapshot, max(0.0, self._cost_clock() - started)

    def _read_and_encode(self) -> tuple[FleetSnapshot, bytes | None]:
        snapshot = self._load()
        return snapshot, self._encoded(snapshot) if self._json_wanted and self._encode is not None else None

    def _refresh(self) -> None:
        started = self._clock()
        cost_started = self._cost_clock()
        try:
            snapshot, body = self._read_and_encode()
        except Exception:  # the database may be away: the next stale reader reads inline and says so
            log.exception("background fleet read failed; the snapshot stays as it was")
            snapshot, body = None, None
        cost = max(0.0, self._cost_clock() - cost_started)
        with self._lock:
            if snapshot is not None:
                self._snapshot, self._read_at, self._read_cost = snapshot, started, cost
                self._json = None if body is None else (snapshot, body)
                self.background_reads += 1
            self._refreshing = False
