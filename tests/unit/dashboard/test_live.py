from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.live import READ_SHARE, LiveHub, SnapshotCache, fleet_delta
from dashboard.readmodel import FleetSnapshot, FleetTotals
from tests.unit.dashboard.factories import NOW, row
from tests.waiting import wait_for

TOTALS = FleetTotals(
    agents=0,
    online=0,
    hot=0,
    alerts=0,
    throughput_bps=0.0,
    backlog_files=0,
    backlog_bytes=0,
    uploaded_today_files=0,
    uploaded_today_bytes=0,
    saved_today_bytes=0,
    failures_today=0,
    rejected_today=0,
)


def test_first_delta_is_everything() -> None:
    rows = [row("a"), row("b")]
    delta = fleet_delta(None, rows)
    assert [r.agent_id for r in delta.changed] == ["a", "b"]
    assert delta.removed == []


def test_delta_has_changed_new_and_removed_rows() -> None:
    before = {r.agent_id: r for r in [row("a"), row("b"), row("c")]}
    after = [row("a"), row("b", temperature_c=71.0), row("d")]
    delta = fleet_delta(before, after)
    assert [r.agent_id for r in delta.changed] == ["b", "d"]
    assert delta.removed == ["c"]


@given(temps=st.lists(st.floats(0, 100), max_size=20), changes=st.sets(st.integers(0, 19)))
def test_applying_the_delta_gives_the_new_fleet(temps: list[float], changes: set[int]) -> None:
    old = [row(f"pi-{i}", temperature_c=t) for i, t in enumerate(temps)]
    new = [row(r.agent_id, temperature_c=(r.temperature_c or 0) + 1) if i in changes else r for i, r in enumerate(old)]
    state = {r.agent_id: r for r in old}
    delta = fleet_delta(state, new)
    state.update({r.agent_id: r for r in delta.changed})
    for agent_id in delta.removed:
        del state[agent_id]
    assert state == {r.agent_id: r for r in new}
    assert len(delta.changed) == len([i for i in changes if i < len(old)])


def test_hub_shares_one_poller_and_stops_when_nobody_listens() -> None:
    loads: list[int] = []

    def load() -> FleetSnapshot:
        loads.append(1)
        return FleetSnapshot(rows=[row(f"pi-{len(loads)}")], totals=TOTALS, alerts=[], at=NOW)

    hub = LiveHub(load, interval_s=0.0)

    async def take(n: int) -> list[str]:
        got: list[str] = []
        async for snap in hub.snapshots():
            got.append(snap.rows[0].agent_id)
            if len(got) == n:
                break
        return got

    async def scenario() -> tuple[list[str], list[str], int]:
        first, second = await asyncio.gather(take(3), take(3))
        listening = hub.subscribers
        for _ in range(5):  # let the poller notice that nobody listens
            await asyncio.sleep(0)
        return first, second, listening

    first, second, listening = asyncio.run(scenario())
    assert listening == 0
    for got in (first, second):
        numbers = [int(x.split("-")[1]) for x in got]
        assert numbers == sorted(numbers)  # newer snapshots only, never an old one again
        assert len(set(numbers)) == 3
    settled = len(loads)
    assert settled <= 8  # one poller for both listeners, not one each per snapshot


def test_snapshot_cache_reads_again_only_when_old() -> None:
    reads: list[int] = []

    def load() -> FleetSnapshot:
        reads.append(1)
        return FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW)

    now = [10.0]
    cache = SnapshotCache(load, max_age_s=1.0, clock=lambda: now[0])
    first = cache.get()
    now[0] += 0.99
    assert cache.get() is first
    now[0] += 0.01
    assert cache.get() is not first
    assert len(reads) == 2
    always = SnapshotCache(load, max_age_s=0.0, clock=lambda: now[0])
    always.get()
    always.get()
    assert len(reads) == 4


def test_snapshot_cache_serves_a_stale_snapshot_while_one_background_read_renews_it() -> None:
    release = threading.Event()
    reads: list[int] = []

    def load() -> FleetSnapshot:
        reads.append(1)
        if len(reads) > 1:  # the background read waits until the test has seen the stale answers
            assert release.wait(60)
        return FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW)

    now = [10.0]
    cache = SnapshotCache(load, max_age_s=1.0, clock=lambda: now[0], stale_s=5.0)
    first = cache.get()
    now[0] += 2.0  # stale, within the grace
    assert cache.get() is first
    assert cache.get() is first  # one background read, not one per caller
    release.set()
    wait_for(lambda: cache.background_reads == 1, 60, "the background read")
    renewed = cache.get()
    assert renewed is not first
    assert len(reads) == 2
    now[0] += 1.0 + 5.0  # beyond the grace: read inline
    assert cache.get() is not renewed
    assert len(reads) == 3


def test_snapshot_cache_without_max_age_never_serves_stale() -> None:
    reads: list[int] = []

    def load() -> FleetSnapshot:
        reads.append(1)
        return FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW)

    cache = SnapshotCache(load, max_age_s=0.0, clock=lambda: 10.0, stale_s=5.0)
    assert cache.get() is not cache.get()
    assert len(reads) == 2


@pytest.mark.parametrize(
    ("max_age_s", "read_cpu_s", "kept_s"),
    [
        (1.0, 0.0, 1.0),  # a cheap read: max_age_s as configured
        (1.0, 0.05, 1.0),  # 0.05 s / READ_SHARE = 0.5 s < 1 s
        (1.0, 0.5, 5.0),  # 10,000 agents: a read of 0.5 s of CPU is kept 5 s (at most a tenth of a core)
        (10.0, 0.5, 10.0),  # configured longer than that: as configured
        (0.0, 0.5, 0.0),  # 0: read on every call, whatever it costs
    ],
)
def test_snapshot_cache_keeps_a_costly_read_longer(max_age_s: float, read_cpu_s: float, kept_s: float) -> None:
    cpu, now, reads = [0.0], [10.0], []

    def load() -> FleetSnapshot:
        reads.append(1)
        cpu[0] += read_cpu_s
        return FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW)

    cache = SnapshotCache(load, max_age_s=max_age_s, clock=lambda: now[0], cost_clock=lambda: cpu[0])
    first = cache.get()
    assert cache.max_age_s == pytest.approx(kept_s)
    assert kept_s == 0 or READ_SHARE * kept_s >= read_cpu_s - 1e-9
    now[0] += kept_s * 0.99
    assert (cache.get() is first) == (kept_s > 0)
    now[0] += kept_s * 0.02 + 1e-6
    assert cache.get() is not first


def test_snapshot_cache_json_is_made_once_per_snapshot_and_by_the_background_read() -> None:
    encoded: list[FleetSnapshot] = []
    now = [10.0]

    def load() -> FleetSnapshot:
        return FleetSnapshot(rows=[row("a")], totals=TOTALS, alerts=[], at=NOW)

    def encode(snapshot: FleetSnapshot) -> bytes:
        encoded.append(snapshot)
        return f"{len(encoded)}".encode()

    cache = SnapshotCache(load, max_age_s=1.0, clock=lambda: now[0], stale_s=5.0, encode=encode)
    assert cache.json() == b"1"
    assert cache.json() == b"1"  # the same snapshot: not encoded again
    assert encoded == [cache.get()]
    now[0] += 2.0  # stale: served as it is, one background read renews it and encodes the new snapshot
    assert cache.json() == b"1"
    wait_for(lambda: cache.background_reads == 1, 60, "the background read")
    assert len(encoded) == 2
    assert encoded[-1] is cache.get()
    assert cache.json() == b"2"  # made by the background read, not by this call
    assert len(encoded) == 2


def test_snapshot_cache_without_an_encoder_has_no_json() -> None:
    cache = SnapshotCache(lambda: FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW), 1.0, lambda: 0.0)
    with pytest.raises(RuntimeError):
        cache.json()


@given(st.floats(0, 60), st.floats(0, 30))
def test_snapshot_max_age_bounds_the_share_of_a_core_spent_reading(max_age_s: float, read_cpu_s: float) -> None:
    cpu = [0.0]

    def load() -> FleetSnapshot:
        cpu[0] += read_cpu_s
        return FleetSnapshot(rows=[], totals=TOTALS, alerts=[], at=NOW)

    cache = SnapshotCache(load, max_age_s=max_age_s, clock=lambda: 0.0, cost_clock=lambda: cpu[0])
    cache.get()
    if max_age_s == 0:
        assert cache.max_age_s == 0
    else:
        assert cache.max_age_s >= max_age_s
        assert read_cpu_s <= READ_SHARE * cache.max_age_s * (1 + 1e-9)
