"""The SQLite journal (an adapter, but local and fast: a file in tmp_path)."""

from pathlib import Path

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.queue import QueueEntry
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings
from edge_agent.transfer.journal import DONE, QUEUED, Journal

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
