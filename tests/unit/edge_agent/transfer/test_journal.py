"""The SQLite journal (an adapter, but local and fast: a file in tmp_path)."""

import os
import sqlite3
from pathlib import Path

import pytest

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.queue import QueueEntry
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings
from edge_agent.transfer.journal import DONE, QUEUED, SCHEMA, Journal
from edge_agent.transfer.journal import _settings_json as _json
from tests.oddnames import ODD_NAMES

SETTINGS = UploadSettings("p/a/x.flac", PartPlan(5, 8, True), 42, 5, (10, 20, 30))


def test_upload_record_survives_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    j.start_upload("/a.wav", "uid", SETTINGS, now=1.0)
    j.add_part("/a.wav", StoredPart(3, "c" * 32, 8, 13))
    j.add_part("/a.wav", StoredPart(2, "b" * 32, 8, 5))
    j.add_part("/a.wav", StoredPart(2, "b" * 32, 8, 5))  # idempotent
    j.close()
    j = Journal(tmp_path / "j.sqlite3")
    assert j.upload("/a.wav") == UploadRecord(
        "uid", SETTINGS, (StoredPart(2, "b" * 32, 8, 5), StoredPart(3, "c" * 32, 8, 13))
    )
    assert j.uploads_in_progress() == [("/a.wav", "p/a/x.flac", "uid")]
    j.start_upload("/a.wav", "uid2", SETTINGS, now=2.0)  # a fresh upload forgets the old parts
    rec = j.upload("/a.wav")
    assert rec is not None
    assert (rec.upload_id, rec.parts) == ("uid2", ())
    j.drop_upload("/a.wav")
    assert j.upload("/a.wav") is None
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_queue_lifecycle(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    assert j.enqueue("/a.wav", 100, 7, now=1.0, recheck=False)
    assert j.enqueue("/a.wav", 100, 7, now=5.0, recheck=False)  # still queued: enqueue time kept
    assert j.queued() == [QueueEntry("/a.wav", 100, 1.0)]
    j.update_entry(QueueEntry("/a.wav", 100, 1.0, failures=2, not_before=50.0), "boom")
    assert j.queued() == [QueueEntry("/a.wav", 100, 1.0, 2, 50.0)]
    j.finish_entry("/a.wav", DONE, "k", "")
    assert j.queued() == []
    assert j.status("/a.wav") == (DONE, "k", "")
    assert not j.enqueue("/a.wav", 100, 7, now=9.0, recheck=False)  # done and unchanged: stays done
    assert j.enqueue("/a.wav", 100, 8, now=9.0, recheck=False)  # changed mtime: queued again, fresh
    assert j.queued() == [QueueEntry("/a.wav", 100, 9.0)]
    j.finish_entry("/a.wav", DONE, "k", "")
    assert j.enqueue("/a.wav", 100, 8, now=10.0, recheck=True)
    assert j.status("/a.wav") == (QUEUED, "k", "")
    assert j.status("/nope.wav") is None


@pytest.mark.parametrize("raw", list(ODD_NAMES.values()), ids=list(ODD_NAMES))
def test_any_file_name_goes_through_every_table_and_back(tmp_path: Path, raw: bytes) -> None:
    path = os.fsdecode(b"/spool/" + raw)
    j = Journal(tmp_path / "j.sqlite3")
    assert j.enqueue(path, 100, 7, now=1.0, recheck=False)
    j.update_entry(QueueEntry(path, 100, 1.0, failures=1, not_before=5.0), f"{path}: boom\n")
    j.start_upload(path, "uid", SETTINGS, now=1.0)
    j.add_part(path, StoredPart(1, "a" * 32, 8, 0))
    j.close()
    j = Journal(tmp_path / "j.sqlite3")  # what the agent does at every start
    assert j.queued() == [QueueEntry(path, 100, 1.0, 1, 5.0)]
    assert j.uploads_in_progress() == [(path, "p/a/x.flac", "uid")]
    record = j.upload(path)
    assert record is not None
    assert record.parts == (StoredPart(1, "a" * 32, 8, 0),)
    status = j.status(path)
    assert status is not None
    status[2].encode("utf-8")  # the reason is stored as valid UTF-8, whatever the path held
    j.finish_entry(path, DONE, "k", "")
    assert j.status(path) == (DONE, "k", "")
    j.drop_upload(path)
    assert j.upload(path) is None


def test_a_journal_written_before_names_could_be_bytes_reads_the_same(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    db.executescript(SCHEMA)  # the schema did not change: only how a non-UTF-8 path is bound
    db.execute("INSERT INTO queue (path, size, mtime_ns, enqueued_at) VALUES ('/spool/café.wav', 10, 1, 2.0)")
    db.execute("INSERT INTO uploads VALUES ('/spool/café.wav', 'uid', 'p/a/café.flac', ?, 3.0)", (_json(SETTINGS),))
    db.commit()
    db.close()
    j = Journal(tmp_path / "j.sqlite3")
    assert j.queued() == [QueueEntry("/spool/café.wav", 10, 2.0)]
    assert j.upload("/spool/café.wav") == UploadRecord("uid", SETTINGS, ())
    assert j.enqueue("/spool/café.wav", 10, 1, now=9.0, recheck=False)  # the same row, not a second one
    assert j.queued() == [QueueEntry("/spool/café.wav", 10, 2.0)]


def test_a_plan_journaled_before_part_2_had_its_own_size_reads_as_it_was_started(tmp_path: Path) -> None:
    old = '{"compression_level": 5, "fingerprint": [10, 20, 30], "header_size": 42, "key": "p/a/x.flac", ' \
        '"plan": {"first": 5242880, "held": true, "size": 16777216}}'  # fmt: skip
    j = Journal(tmp_path / "j.sqlite3")
    j._db.execute("INSERT INTO uploads VALUES ('/a.wav', 'uid', 'p/a/x.flac', ?, 3.0)", (old,))
    record = j.upload("/a.wav")
    assert record is not None
    assert record.settings.plan == PartPlan(5 * 1024 * 1024, 16 * 1024 * 1024, True)
    assert record.settings.plan.part_size(2) == 16 * 1024 * 1024  # part 2 as the upload was started with
    j.start_upload("/b.wav", "uid2", SETTINGS, now=1.0)
    j.start_upload("/c.wav", "uid3", SETTINGS.__class__(**{**SETTINGS.__dict__, "plan": PartPlan(5, 8, True, 5)}), 1.0)
    assert [r.settings.plan.second for r in (j.upload("/b.wav"), j.upload("/c.wav")) if r] == [0, 5]


def test_a_write_that_fails_inside_a_transaction_leaves_none_open(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    bad = UploadSettings("k", PartPlan(5, 8, True), 42, 5, (object(), 2, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        j.start_upload("/a.wav", "uid", bad, now=1.0)
    assert not j._db.in_transaction
    j.start_upload("/a.wav", "uid", SETTINGS, now=1.0)
    j.close()
    assert Journal(tmp_path / "j.sqlite3").upload("/a.wav") == UploadRecord("uid", SETTINGS, ())
