"""The executor and the scheduler over in-memory fakes of the store and the journal (``fakes.py`` beside it):
the real ``Engine``, ``FileJob``, part threads, gate and codec (on files in tmp_path), no S3 server. Retries
back off for 0 s, so nothing sleeps."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.partsize import plan_parts
from edge_agent.engine.upload import UploadSettings, md5_hex
from edge_agent.transfer import Engine, EngineConfig
from edge_agent.transfer.journal import DONE, QUEUED, REJECTED
from edge_agent.transfer.link import Link
from fleet_audio import source as real_codec
from fleet_audio.errors import RecordingNotReady
from fleet_base.s3settings import S3Settings
from tests.corpus import write_wav
from tests.integration.edge_agent.transfer.helpers import Recorder
from tests.unit.edge_agent.transfer.fakes import FakeJournal, FakeStore

PART = 5 * MiB
SIZE = 2 * PART + 12345  # three raw parts


class Setup:
    """An engine on fakes; ``run(path)`` gives one attempt to ``path`` and returns its result."""

    def __init__(self, state: Path, codec: Any = None, **config: Any) -> None:
        self.store, self.journal, self.events = FakeStore(), FakeJournal(), Recorder()
        config = {"retry_base_s": 0.0, "retry_cap_s": 0.0, "settle_s": 0.0, **config}
        s3 = S3Settings("http://s3.invalid", "key", "secret", "bucket")
        self.config = EngineConfig(s3=s3, prefix="p", agent_id="pi-7", state_dir=state, **config)
        self.codec = codec or real_codec

    def engine(self, limits: Limits | None = None) -> Engine:
        return Engine(
            self.config,
            limits or Limits(concurrency=2, part_size=PART, compression_level=-1),
            self.events,
            store=self.store,
            journal=self.journal,
            codec=self.codec,
        )

    def run(self, path: Path, limits: Limits | None = None) -> Any:
        engine = self.engine(limits)
        engine.enqueue(path, recheck=True)
        report = engine.run_until_idle()
        assert engine._ctx.gate.in_use == 0  # every slot came back
        assert [r.file for r in report.results] == [str(path)]
        return report.results[0]

    def key(self, path: Path) -> str:
        src = real_codec.open_source(path, -1)
        try:
            return real_codec.object_key("p", "pi-7", path, src)
        finally:
            src.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("recordings")
    (d / "a.bin").write_bytes(random.Random(7).randbytes(SIZE))  # not a WAV: stored raw
    (d / "c.bin").write_bytes(random.Random(8).randbytes(PART + 999))  # two raw parts
    write_wav(d / "b.wav", seconds=40, rate=48000, channels=2, bits=16, kind="noise", seed=5)  # 2 FLAC parts
    return d


@pytest.fixture
def rec(data_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of the raw recording (tests change or delete it)."""
    path = tmp_path / "a.bin"
    path.write_bytes((data_dir / "a.bin").read_bytes())
    return path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path / "state")


def test_a_raw_file_is_stored_through_the_ports(setup: Setup, rec: Path) -> None:
    result = setup.run(rec)
    assert result.ok, result
    assert (result.stored_as, result.stored_bytes) == ("raw", SIZE)
    assert setup.store.objects[result.key].data == rec.read_bytes()
    assert setup.store.uploads == {}
    assert setup.journal.status(str(rec)) == (DONE, result.key, "")
    assert setup.journal.upload(str(rec)) is None
    assert setup.events.kinds() == ["upload_started", "upload_completed"]
    assert setup.events.events[-1].original_sha256 == hashlib.sha256(rec.read_bytes()).hexdigest()


def test_a_flac_upload_sends_part_1_last(setup: Setup, data_dir: Path) -> None:
    wav = data_dir / "b.wav"
    result = setup.run(wav, Limits(concurrency=2, part_size=PART, compression_level=5))
    assert result.ok, result
    assert result.stored_as == "flac"
    assert setup.store.sent == [2, 1]  # part 1 holds the header, final only at the end
    obj = setup.store.objects[result.key]
    assert obj.data[:4] == b"fLaC"
    assert obj.metadata["edgefleet-original-size"] == str(wav.stat().st_size)


class StillClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("rate", "parts", "effective"),
    [
        (None, 2, 4),  # not measured yet: the assignment (8 + 2 MiB)
        (10 * MiB, 2, 4),  # a fast link: the assignment
        (64 * 1024, 3, 1),  # thin: one part in flight, 5 MiB parts for the new upload (5 + 5 + 0.01 MiB)
    ],
)
def test_the_thin_link_guard_sets_the_part_size_of_new_uploads_and_the_parts_in_flight(
    setup: Setup, rec: Path, rate: int | None, parts: int, effective: int
) -> None:
    engine = setup.engine(Limits(concurrency=4, part_size=8 * MiB, compression_level=-1))
    ctx, clock = engine._ctx, StillClock()
    ctx.link = Link(0, 10.0, ctx.sleep, clock=clock)  # the link's time stands still while the test runs
    if rate is not None:
        handle = ctx.link.begin(10 * rate)
        clock.t += 10.0
        ctx.link.end(handle, completed=True)
    ctx.apply_guard()
    assert ctx.gate.in_use == 0
    engine.enqueue(rec)
    report = engine.run_until_idle()
    assert report.ok, report
    assert len(setup.store.sent) == parts
    stats = engine.stats()
    assert stats.effective_concurrency == effective
    assert stats.throughput_bps == (rate or 0.0)
    assert engine.limits.concurrency == 4  # the assignment itself is unchanged
    assert len(setup.store.taps) == parts  # every part went through the link's tap


def test_resume_from_the_journal_sends_only_the_missing_parts(setup: Setup, rec: Path) -> None:
    key, data, st = setup.key(rec), rec.read_bytes(), rec.stat()
    upload_id = setup.store.create(key, "application/octet-stream", {})
    for n in (1, 2):
        chunk = bytearray(data[(n - 1) * PART : n * PART])
        setup.store.upload_part(key, upload_id, n, chunk, md5_hex(chunk))
    plan = plan_parts(PART, SIZE, 0)
    settings_ = UploadSettings(key, plan, 0, -1, (st.st_size, st.st_mtime_ns, st.st_ino))
    setup.journal.start_upload(str(rec), upload_id, settings_, 0.0)
    setup.store.calls.clear()
    result = setup.run(rec)
    assert result.ok, result
    assert setup.events.kinds() == ["upload_resumed", "upload_completed"]
    assert setup.store.calls.count("upload_part") == 1
    assert setup.store.completions[0][1] == upload_id
    assert setup.store.objects[key].data == data


def test_a_lost_create_response_leaves_no_stray(setup: Setup, rec: Path) -> None:
    creates = iter(["lost"])
    setup.store.plan = lambda op: next(creates, None) if op == "create" else None
    result = setup.run(rec)
    assert result.ok, result
    assert setup.store.calls.count("create") == 2
    assert setup.store.calls.count("abort") == 1
    assert setup.store.uploads == {}


def test_a_lost_complete_response_is_settled_by_head(setup: Setup, rec: Path) -> None:
    completes = iter(["lost"])
    setup.store.plan = lambda op: next(completes, None) if op == "complete" else None
    result = setup.run(rec)
    assert result.ok, result
    assert setup.store.calls.count("complete") == 2  # the retry met NoSuchUpload: HEAD decided
    assert setup.store.calls.count("create") == 1


def test_dropped_and_lost_parts_are_sent_again_from_memory(setup: Setup, rec: Path) -> None:
    faults = iter(["drop", "lost", "drop"])
    setup.store.plan = lambda op: next(faults, None) if op == "upload_part" else None
    result = setup.run(rec)
    assert result.ok, result
    assert setup.store.calls.count("upload_part") == 3 + 3
    assert setup.events.events[-1].retries == 3
    assert setup.store.objects[result.key].data == rec.read_bytes()


def test_an_already_stored_recording_is_not_uploaded_again(setup: Setup, rec: Path) -> None:
    first = setup.run(rec)
    setup.store.calls.clear()
    again = Setup(setup.config.state_dir.parent / "other")  # another journal, the same store
    again.store = setup.store
    result = again.run(rec)
    assert (result.ok, result.reason, result.key) == (True, "already stored", first.key)
    assert setup.store.calls == ["head"]
    assert again.events.kinds() == ["upload_completed"]


def test_a_fatal_error_keeps_the_file_queued_with_its_upload(setup: Setup, rec: Path) -> None:
    parts = iter([None, "fatal"])
    setup.store.plan = lambda op: next(parts, None) if op == "upload_part" else None
    engine = setup.engine()
    engine.enqueue(rec)
    result = engine.run_until_idle().results[0]
    assert not result.ok
    assert result.reason == "S3 AccessDenied: upload_part"
    assert setup.events.kinds() == ["upload_started", "upload_failed"]
    assert engine.stats().errors_total == 1
    assert setup.journal.status(str(rec)) == (QUEUED, "", result.reason)
    assert setup.journal.queued()[0].failures == 1
    assert setup.journal.upload(str(rec)) is not None  # the parts stay for a resume
    assert len(setup.store.uploads) == 1


def test_a_request_that_keeps_failing_gives_up_after_the_configured_time(tmp_path: Path, rec: Path) -> None:
    setup = Setup(tmp_path / "state", give_up_after_s=1e-9)  # the first failure is already too late
    setup.store.plan = lambda op: "drop" if op == "create" else None
    result = setup.run(rec)
    assert not result.ok
    assert result.reason == "gave up after 0 s of failures: S3 unreachable: create dropped"


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty"), (None, "file vanished")])
def test_bad_or_vanished_input_is_rejected(setup: Setup, tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"x" if content is None else content)
    engine = setup.engine()
    engine.enqueue(path)
    if content is None:
        path.unlink()
    result = engine.run_until_idle().results[0]
    assert not result.ok
    assert reason in result.reason
    assert setup.events.kinds() == ["file_rejected"]
    assert engine.status(path)[0] == REJECTED  # type: ignore[index]
    assert setup.store.calls == []


class NotReadyCodec:
    def check_finished(self, path: Path, *, settled: bool = False) -> None:
        raise RecordingNotReady(f"{path}: RIFF size is 0x00000000 (recorder still writing)")

    def open_source(self, path: Path, compression_level: int) -> Any:
        raise AssertionError("not opened")

    def object_key(self, prefix: str, agent_id: str, path: Path, source: Any) -> str:
        raise AssertionError("no key")


def test_a_recording_still_being_written_is_deferred_without_a_queue_failure(tmp_path: Path, rec: Path) -> None:
    setup = Setup(tmp_path / "state", codec=NotReadyCodec(), settle_s=60.0)
    engine = setup.engine()
    engine.enqueue(rec)
    result = engine.run_until_idle().results[0]
    assert result.reason.startswith("still being written")
    entry = setup.journal.queued()[0]
    assert entry.failures == 0  # it does not move back in the queue...
    assert entry.not_before >= 60.0  # ...it is looked at again once it could have settled
    assert setup.events.kinds() == ["upload_failed"]
    assert setup.store.calls == []


def test_a_file_changed_while_uploading_aborts_its_upload(setup: Setup, rec: Path) -> None:
    def touch_once(op: str) -> None:  # while part 1 is sent, before part 3 is read (2 slots)
        if op == "upload_part" and setup.store.calls.count("upload_part") == 1:
            os.utime(rec, ns=(0, rec.stat().st_mtime_ns + 10**9))

    setup.store.plan = touch_once
    result = setup.run(rec)
    assert not result.ok
    assert "changed" in result.reason
    assert setup.events.kinds() == ["upload_started", "upload_failed"]
    assert setup.store.uploads == {}  # aborted
    assert setup.journal.upload(str(rec)) is None
    assert not setup.store.objects


def test_a_bug_keeps_the_file_queued_as_an_internal_error(setup: Setup, rec: Path) -> None:
    setup.store.plan = lambda op: "bug" if op == "create" else None
    result = setup.run(rec)
    assert not result.ok
    assert result.reason.startswith("internal error:")
    assert setup.journal.status(str(rec))[0] == QUEUED  # type: ignore[index]


def test_a_stop_while_sending_leaves_the_upload_for_a_resume(setup: Setup, rec: Path) -> None:
    engine = setup.engine()
    stopping: list[threading.Thread] = []

    def stop_at_the_second_part(op: str) -> str | None:
        if op != "upload_part" or setup.store.calls.count("upload_part") < 2:
            return None
        if not stopping:
            stopping.append(threading.Thread(target=engine.stop, args=(30,)))
            stopping[0].start()
        return "drop"  # retried until the stop is seen

    setup.store.plan = stop_at_the_second_part
    engine.enqueue(rec)
    result = engine.run_until_idle().results[0]
    stopping[0].join()
    assert (result.ok, result.reason) == (False, "engine stopped")
    assert setup.events.kinds() == ["upload_started"]  # a stop is no failure
    assert setup.journal.upload(str(rec)) is not None
    assert setup.store.sent == [1]
    assert engine._ctx.gate.in_use == 0

    setup.store.plan = lambda op: None
    resumed = setup.run(rec)
    assert resumed.ok, resumed
    assert setup.events.kinds()[-2:] == ["upload_resumed", "upload_completed"]
    assert setup.store.sent == [1, 2, 3]  # part 1 was on the server: only the others went up
    assert setup.store.objects[resumed.key].data == rec.read_bytes()


def per_call(faults: list[str | None]) -> Callable[[str], str | None]:
    it: Iterator[str | None] = iter(faults)
    return lambda op: next(it, None)


@settings(max_examples=25, deadline=None)
@given(faults=st.lists(st.sampled_from([None, None, None, "drop", "lost", "fatal", "gone"]), max_size=30))
def test_random_store_faults_end_in_one_result_and_a_complete_object_or_none(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, faults: list[str | None]
) -> None:
    state = tmp_path_factory.mktemp("state")
    path = state / "c.bin"
    path.write_bytes((data_dir / "c.bin").read_bytes())
    setup = Setup(state / "journal")
    setup.store.plan = per_call(faults)
    result = setup.run(path)
    assert setup.store.invalid == []  # never completed with a part missing
    if result.ok:
        assert setup.store.objects[result.key].data == path.read_bytes()
        assert setup.journal.upload(str(path)) is None
        assert setup.events.kinds()[-1] == "upload_completed"
    else:
        assert setup.events.kinds()[-1] == "upload_failed"
    assert setup.journal.status(str(path))[0] == (DONE if result.ok else QUEUED)  # type: ignore[index]
