import random
from typing import Any

from edge_agent.engine import EngineEvent, EngineStats, Limits
from edgefleet.sim.engine import SimEngine
from fleet_protocol.vocabulary import EventKind

MB = 1024 * 1024


def make(events: list[EngineEvent], **kw: Any) -> SimEngine:
    options: dict[str, Any] = {"initial_files": 3, "file_bytes": (10 * MB, 10 * MB), "arrival_every_s": 1e9} | kw
    return SimEngine("sim-1", "p", 1 * MB, events.append, rng=random.Random(1), now=0.0, **options)


def test_uploads_within_concurrency_and_completes_with_events():
    events: list[EngineEvent] = []
    engine = make(events)
    engine.set_limits(Limits(concurrency=2))
    engine.advance(0.0)
    assert engine.stats().active_uploads == 2
    engine.advance(10.0)  # 2 streams x 1 MB/s x 10 s = 20 MB: both 10 MB files done
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.UPLOAD_COMPLETED) == 2
    done = [e for e in events if e.kind == EventKind.UPLOAD_COMPLETED]
    assert all(e.stored_as == "flac" and 0 < e.stored_bytes < e.original_bytes for e in done)
    assert all(e.key.startswith("p/sim-1/") and e.key.endswith(".flac") for e in done)
    engine.advance(10.1)
    assert engine.stats().active_uploads == 1
    assert engine.stats().backlog_files == 1


def test_paused_windows_and_bandwidth_are_obeyed():
    events: list[EngineEvent] = []
    engine = make(events, local_time_of_day=lambda: 12 * 3600.0)
    engine.set_limits(Limits(concurrency=3, paused=True))
    engine.advance(5.0)
    assert engine.stats().active_uploads == 0
    engine.set_limits(Limits(concurrency=3, windows=("22:00-06:00",)))
    engine.advance(6.0)
    assert engine.stats().active_uploads == 0
    engine.set_limits(Limits(concurrency=3, windows=("22:00-06:00",), upload_now=True, bandwidth_bps=MB))
    engine.advance(7.0)
    engine.advance(12.0)  # capped at 1 MB/s in total, not 3
    stats = engine.stats()
    assert stats.active_uploads == 3
    assert stats.backlog_bytes == 30 * MB - 5 * MB


def test_pausing_or_narrowing_parks_files_with_their_progress():
    events: list[EngineEvent] = []
    engine = make(events)
    engine.set_limits(Limits(concurrency=3))
    engine.advance(0.0)
    engine.advance(4.0)  # 4 MB of each of the three files sent
    engine.set_limits(Limits(concurrency=1))
    engine.advance(4.0)
    assert engine.stats().active_uploads == 1
    engine.set_limits(Limits(concurrency=1, paused=True))
    engine.advance(5.0)
    stats = engine.stats()
    assert (stats.active_uploads, stats.backlog_files) == (0, 3)
    assert stats.backlog_bytes == 30 * MB - 13 * MB
    engine.set_limits(Limits(concurrency=3))
    engine.advance(5.0)
    engine.advance(11.0)  # 6 MB more each: all three complete, nothing re-sent
    assert [e.kind for e in events].count(EventKind.UPLOAD_COMPLETED) == 3


def test_recordings_arrive():
    engine = make([], initial_files=0, arrival_every_s=60.0)
    engine.set_limits(Limits(paused=True))
    engine.advance(181.0)
    assert engine.stats().backlog_files == 3


def test_combined_engine_sums_stats_forwards_limits_and_files_and_only_real_events():
    from pathlib import Path

    from edgefleet.sim.engine import CombinedEngine
    from tests.unit.edge_agent.service.fakes import FakeEngine

    real = FakeEngine()
    real.snapshot = EngineStats(backlog_files=1, backlog_bytes=5, oldest_age_s=1.0, active_uploads=1, errors_total=2)
    simulated_events: list[EngineEvent] = []
    simulated = make(simulated_events)
    engine = CombinedEngine(real, simulated)
    engine.set_limits(Limits(concurrency=2))
    assert real.limits == [Limits(concurrency=2)] == [simulated.limits]
    simulated.advance(0.0)
    stats = engine.stats()
    assert (stats.backlog_files, stats.active_uploads, stats.errors_total) == (4, 3, 2)
    assert stats.backlog_bytes == 5 + 30 * MB
    assert engine.enqueue(Path("/spool/a.wav"))
    assert real.queued == [Path("/spool/a.wav")]
    engine.start()
    engine.stop(1)
    engine.close()
    assert real.closed
