import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge_agent.engine import EngineEvent, EngineStats, Limits
from edge_agent.service.agent import AgentService
from edge_agent.service.assignment_store import AssignmentStore
from edge_agent.service.config import AgentConfig, parse_config
from edge_agent.service.ledger import Ledger
from edge_agent.service.ports import Capabilities, Verdict
from fleet_base import __version__
from fleet_protocol.codec import encode
from fleet_protocol.messages import Assignment, Birth, ControllerState, Event, State, Telemetry
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind
from tests.unit.edge_agent.service.fakes import FakeCheck, FakeEngine, FakeHost, FakePublisher

MiB = 1024 * 1024
ID = "pi-1"
ASSIGNMENT_TOPIC = agent_topic(ID, AgentChannel.ASSIGNMENT)


def make_config(tmp_path: Path, **overrides: Any) -> AgentConfig:
    data = {
        "agent_id": ID,
        "site": "garden",
        "spool_dir": str(tmp_path / "spool"),
        "state_dir": str(tmp_path / "state"),
        "settle_seconds": 10,
        "scan_interval_s": 1,
        "telemetry_interval_s": 5,
        "min_free_bytes": 1000,
        "mqtt": {"url": "mqtt://h"},
        "s3": {"endpoint": "http://h:1", "access_key": "a", "secret_key": "b", "bucket": "rec", "prefix": "p"},
        "defaults": {"concurrency": 3, "compression_level": 4},
    } | overrides
    config = parse_config(data, env={})
    config.spool_dir.mkdir(exist_ok=True)
    config.state_dir.mkdir(exist_ok=True)
    return config


class World:
    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.config = make_config(tmp_path, **overrides)
        self.engine = FakeEngine()
        self.publisher = FakePublisher()
        self.host = FakeHost()
        self.check = FakeCheck()
        self.service = self.new_service()

    def new_service(self) -> AgentService:
        return AgentService(
            self.config,
            engine=self.engine,
            publisher=self.publisher,
            host=self.host,
            check_finished=self.check,
            capabilities=Capabilities(
                "Raspberry Pi 4", 4, 4 * 2**30, 64 * 2**30, 5e6, encode_bps_by_level={0: 9e6, 5: 5e6}, encode_cores=2.5
            ),
            store=AssignmentStore(self.config.state_dir),
            ledger=Ledger(self.config.state_dir / "spool.db"),
        )

    def write(self, name: str, data: bytes = b"RIFF" + bytes(40)) -> Path:
        path = self.config.spool_dir / name
        path.write_bytes(data)
        return path


def assignment(version: int = 1, **kw: Any) -> Assignment:
    fields = {"concurrency": 4, "part_size": 16 * MiB} | kw
    return Assignment(agent_id=ID, seq=9, version=version, **fields)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.service.start(now=0)
    return w


def test_starts_with_defaults_and_reports_in(world):
    assert world.engine.started
    assert world.engine.limits == [Limits(concurrency=3, part_size=8 * MiB, compression_level=4)]
    birth, online = world.service.on_connected()
    assert isinstance(birth, Birth)
    assert birth.software_version == __version__  # the one release version (fleet_base)
    assert (birth.model, birth.cores, birth.bucket, birth.prefix, birth.site) == (
        "Raspberry Pi 4",
        4,
        "rec",
        "p",
        "garden",
    )
    assert birth.flac_encode_bps == 5e6
    assert isinstance(online, State)
    assert online.state == AgentStatus.ONLINE
    assert online.seq > birth.seq


def test_birth_and_telemetry_carry_the_encode_measurements(world):
    birth, _ = world.service.on_connected()
    assert birth.encode_bps_by_level == [9e6, 0, 0, 0, 0, 5e6, 0, 0, 0]
    assert birth.encode_cores == 2.5
    assert world.engine.assigned == [False]  # no assignment yet: the agent's own cost model chooses
    assert world.service.telemetry().encode_bps_by_level == birth.encode_bps_by_level  # the engine has none yet
    world.engine.snapshot = EngineStats(encode_bps_by_level=(1e6,) * 9, compression_ratio_by_level=(0.6,) * 9)
    telemetry = world.service.telemetry()
    assert telemetry.encode_bps_by_level == [1e6] * 9
    assert telemetry.compression_ratio_by_level == [0.6] * 9
    world.service.apply_assignment(assignment())
    assert world.engine.assigned == [False, True]


def test_a_settled_file_is_queued_once(world):
    path = world.write("a.wav")
    world.service.tick(0)
    assert world.engine.queued == []
    world.service.tick(10)
    assert world.engine.queued == [path]
    world.service.tick(20)
    assert world.engine.queued == [path]
    assert world.service.counters.files_queued == 1


def test_not_ready_waits_and_rejected_is_reported_but_kept(world):
    world.write("rec.wav")
    bad = world.write("bad.wav")
    world.check.verdicts["rec.wav"] = (Verdict.NOT_READY, "RIFF size 0")
    world.check.verdicts["bad.wav"] = (Verdict.REJECTED, "empty data chunk")
    world.service.tick(0)
    world.service.tick(10)
    assert world.engine.queued == []
    [event] = world.publisher.of(Event)
    assert (event.kind, event.file, event.reason) == (EventKind.FILE_REJECTED, "bad.wav", "empty data chunk")
    assert bad.exists()
    del world.check.verdicts["rec.wav"]
    world.service.tick(15)
    assert world.engine.queued == []  # the settle clock restarted at 10
    world.service.tick(20)
    assert [p.name for p in world.engine.queued] == ["rec.wav"]
    world.service.tick(40)
    assert world.check.calls.count("bad.wav") == 1


def test_a_full_disk_loses_nothing_and_backs_off(world):
    path = world.write("a.wav")
    world.service.tick(0)
    world.engine.fail_with = sqlite3.OperationalError("database or disk is full")
    world.service.tick(10)
    assert world.service.counters.queue_failures == 1
    world.service.tick(10.5)
    world.service.tick(11.5)  # back-off: 1 s, then 2 s
    assert world.service.counters.queue_failures == 2
    world.service.tick(12)
    assert world.service.counters.queue_failures == 2
    world.engine.fail_with = None
    world.service.tick(13.5)
    assert world.engine.queued == [path]
    assert path.exists()


def test_queued_files_survive_a_restart_without_being_queued_twice(world):
    world.write("a.wav")
    world.service.tick(0)
    world.service.tick(10)
    assert len(world.engine.queued) == 1
    world.service.stop(1)
    assert world.engine.closed
    again = world.new_service()
    again.start(now=100)
    again.tick(200)
    assert len(world.engine.queued) == 1


def test_the_ledger_forgets_files_that_left_the_spool(world):
    kept = world.write("kept.wav")
    gone = world.write("gone.wav")
    world.service.tick(0)
    world.service.tick(10)
    assert world.service.ledger.names() == {"kept.wav", "gone.wav"}
    world.service.stop(1)
    gone.unlink()
    again = world.new_service()
    again.start(now=100)
    assert again.ledger.names() == {"kept.wav"}
    assert kept.exists()


def test_assignment_is_applied_persisted_and_survives_a_restart(world):
    world.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=7, paused=True, bandwidth_bps=500)))
    expected = Limits(concurrency=4, part_size=16 * MiB, bandwidth_bps=500, compression_level=5, paused=True)
    assert world.engine.limits[-1] == expected
    world.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=7, paused=True, bandwidth_bps=500)))
    assert len(world.engine.limits) == 2  # the retained copy again: no-op
    restarted = world.new_service()
    restarted.start(now=0)
    assert world.engine.limits[-1] == expected
    assert restarted.assignment is not None
    assert restarted.assignment.version == 7


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"v": 1}',
        b'{"v": 2, "agent_id": "pi-1", "seq": 1, "version": 1, "concurrency": 1, "part_size": 5242880}',
        encode(Assignment(agent_id="pi-2", seq=1, version=1, concurrency=1, part_size=5 * MiB)),
        b'{"v": 1, "agent_id": "pi-1", "seq": 1, "version": 1, "concurrency": -1, "part_size": 5242880}',
    ],
)
def test_invalid_assignments_are_counted_never_fatal(world, payload):
    world.service.handle_message(ASSIGNMENT_TOPIC, payload)
    world.service.handle_message(CONTROLLER_STATE_TOPIC, b"\xff")
    assert world.service.counters.invalid_messages == 2
    assert len(world.engine.limits) == 1


def test_empty_retained_assignment_and_controller_state(world):
    world.service.handle_message(ASSIGNMENT_TOPIC, b"")
    state = ControllerState(controller_id="ctl", state=AgentStatus.OFFLINE)
    world.service.handle_message(CONTROLLER_STATE_TOPIC, encode(state))
    assert world.service.controller_online is False
    assert world.service.counters.invalid_messages == 0
    assert len(world.engine.limits) == 1


def completed(path: Path) -> EngineEvent:
    return EngineEvent(
        EventKind.UPLOAD_COMPLETED,
        str(path),
        key="p/pi-1/x.flac",
        original_bytes=44,
        stored_bytes=30,
        original_sha256="a" * 64,
        stored_as="flac",
        duration_s=1.5,
    )


@pytest.mark.parametrize(("retention", "remains"), [("delete", False), ("keep", True), ("move", False)])
def test_retention_only_after_the_verified_completion(tmp_path, retention, remains):
    w = World(tmp_path, retention=retention, done_dir=str(tmp_path / "done"))
    w.service.start(now=0)
    path = w.write("a.wav")
    w.service.tick(0)
    w.service.tick(10)
    for kind in (EventKind.UPLOAD_STARTED, EventKind.UPLOAD_RESUMED, EventKind.UPLOAD_FAILED):
        w.service.handle_engine_event(EngineEvent(kind, str(path), reason="x"))
    assert path.exists()
    w.service.handle_engine_event(completed(path))
    assert path.exists() == remains
    assert (tmp_path / "done" / "a.wav").exists() == (retention == "move")
    kinds = [e.kind for e in w.publisher.of(Event)]
    assert kinds == [
        EventKind.UPLOAD_STARTED,
        EventKind.UPLOAD_RESUMED,
        EventKind.UPLOAD_FAILED,
        EventKind.UPLOAD_COMPLETED,
    ]
    last = w.publisher.of(Event)[-1]
    assert (last.file, last.key, last.stored_as, last.original_sha256) == ("a.wav", "p/pi-1/x.flac", "flac", "a" * 64)
    w.service.tick(100)
    assert len(w.engine.queued) == 1  # a kept file is not uploaded again


def test_completion_of_a_file_outside_the_spool_touches_nothing(world, tmp_path):
    elsewhere = tmp_path / "elsewhere.wav"
    elsewhere.write_bytes(b"RIFF")
    world.service.handle_engine_event(completed(elsewhere))
    assert elsewhere.exists()
    assert world.publisher.of(Event)[-1].file == "elsewhere.wav"


def test_telemetry_combines_host_engine_and_assignment(world):
    world.engine.snapshot = EngineStats(3, 3000, 12.0, 2, 1e6, 10**7, 4, 1)
    world.service.handle_message(ASSIGNMENT_TOPIC, encode(assignment(version=5)))
    world.host.disk_free = 10
    world.service.tick(0)
    [t] = world.publisher.of(Telemetry)
    assert (t.temperature_c, t.throttled, t.disk_free_bytes) == (55.5, 0x50000, 10)
    assert (t.backlog_files, t.backlog_bytes, t.backlog_oldest_age_s, t.active_uploads) == (3, 3000, 12.0, 2)
    assert (t.throughput_bps, t.retries_total, t.errors_total, t.assignment_version) == (1e6, 4, 1, 5)
    assert world.service.disk_low
    world.service.tick(4)
    assert len(world.publisher.of(Telemetry)) == 1
    world.service.tick(5)
    assert len(world.publisher.of(Telemetry)) == 2


def test_the_disk_low_event_is_sent_once_per_drop_below_the_threshold(tmp_path):
    w = World(tmp_path, min_free_bytes=1000 * MiB, min_free_hysteresis_bytes=100 * MiB)
    for now, free in enumerate([2000, 999, 500, 1050, 900, 1100, 999]):
        w.host.disk_free = free * MiB
        w.service.tick(now * 5)
    low = [e for e in w.publisher.of(Event) if e.kind == EventKind.DISK_LOW]
    assert [(e.file, e.reason) for e in low] == [
        ("", "spool disk: 999.0 MiB free, below the threshold of 1000.0 MiB"),
        ("", "spool disk: 999.0 MiB free, below the threshold of 1000.0 MiB"),
    ]
    assert w.service.disk_low
    assert len(w.publisher.of(Telemetry)) == 7  # telemetry goes on as ever


def test_telemetry_carries_the_agents_own_measurements(world):
    world.service.tick(0)
    [unmeasured] = world.publisher.of(Telemetry)
    assert (unmeasured.mqtt_rtt_s, unmeasured.s3_ttfb_s) == (None, None)
    assert (unmeasured.process_cpu_percent, unmeasured.process_rss_bytes) == (None, None)
    world.publisher.rtt_s = 0.012
    world.engine.snapshot = EngineStats(s3_ttfb_s=0.034)
    world.host.own = (7.5, 48 << 20)
    world.service.tick(5)
    t = world.publisher.of(Telemetry)[-1]
    assert (t.mqtt_rtt_s, t.s3_ttfb_s, t.process_cpu_percent, t.process_rss_bytes) == (0.012, 0.034, 7.5, 48 << 20)


def test_own_measurements_out_of_bounds_are_fitted_not_fatal(world):
    world.publisher.rtt_s = 1e12
    world.host.own = (float("nan"), 2**60)
    world.service.tick(0)
    [t] = world.publisher.of(Telemetry)
    assert t.mqtt_rtt_s == 3600.0
    assert t.process_cpu_percent is None
    assert t.process_rss_bytes == 2**53


def test_a_file_changed_after_it_was_queued_is_not_deleted_on_completion(world):
    path = world.write("a.wav")
    world.service.tick(0)
    world.service.tick(10)
    path.write_bytes(b"RIFF" + bytes(80))  # the recorder rewrote it while it was uploading
    world.service.tick(11)
    world.service.handle_engine_event(completed(path))
    assert path.exists()
    world.service.tick(30)
    assert world.engine.calls == [path, path]  # settled again: offered to the engine again


def test_a_file_the_engine_already_stored_gets_retention_without_a_new_upload(world):
    path = world.write("old.wav")
    world.engine.already_stored.add("old.wav")
    world.service.tick(0)
    world.service.tick(10)
    assert world.engine.queued == []
    assert not path.exists()


def test_an_unreadable_spool_is_logged_once_and_recovers(world, caplog):
    spool = world.config.spool_dir
    spool.rename(spool.with_name("elsewhere"))
    world.service.tick(0)
    world.service.tick(1)
    world.service.tick(2)
    assert sum("cannot list spool folder" in r.message for r in caplog.records) == 1
    spool.with_name("elsewhere").rename(spool)
    world.write("a.wav")
    world.service.tick(3)
    world.service.tick(13)
    assert [p.name for p in world.engine.queued] == ["a.wav"]


def test_a_file_finished_during_a_crash_is_retained_at_the_next_start(world):
    """The engine stored and verified a file, then the agent died before the completion event reached the
    service: the ledger still says queued. The next start asks the engine again and applies retention."""
    path = world.write("a.wav")
    world.service.tick(0)
    world.service.tick(10)
    assert world.engine.queued == [path]
    world.service.stop(1)
    world.engine.already_stored.add("a.wav")  # what the engine's journal says after the crash
    again = world.new_service()
    again.start(now=100)
    assert world.engine.calls == [path, path]  # offered again at the start, not uploaded again
    assert world.engine.queued == [path]
    assert not path.exists()  # retention = delete, applied only because the engine reports it stored


@pytest.mark.parametrize(
    ("stored_as", "wire"),
    [("flac", ("flac", "")), ("raw", ("raw", "")), ("zstd", ("raw", "zstd"))],
)
def test_a_zstd_object_goes_on_the_wire_as_raw_with_its_codec(tmp_path, stored_as, wire):
    """``stored_as`` is a closed enumeration (docs/protocol.md): zstd travels in ``stored_codec``."""
    w = World(tmp_path, retention="keep")
    w.service.start(now=0)
    path = w.write("a.wav")
    w.service.handle_engine_event(replace(completed(path), stored_as=stored_as))
    last = w.publisher.of(Event)[-1]
    assert (last.stored_as, last.stored_codec) == wire
