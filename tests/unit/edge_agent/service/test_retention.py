import os

import pytest

from edge_agent.service.retention import Outcome, apply_retention
from edge_agent.service.spool import stat_entry
from tests.oddnames import ODD_NAMES, odd_str


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "spool" / "rec.wav"
    path.parent.mkdir()
    path.write_bytes(b"RIFF" + bytes(100))
    return path


def test_delete_removes_the_uploaded_file(recording):
    assert apply_retention("delete", recording, stat_entry(recording)) == Outcome.DELETED
    assert not recording.exists()


def test_keep_leaves_it(recording):
    assert apply_retention("keep", recording, stat_entry(recording)) == Outcome.KEPT
    assert recording.exists()


def test_move_puts_it_into_the_done_folder_without_overwriting(recording, tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    (done / "rec.wav").write_bytes(b"older")
    assert apply_retention("move", recording, stat_entry(recording), done) == Outcome.MOVED
    assert not recording.exists()
    assert (done / "rec.wav").read_bytes() == b"older"
    assert (done / "rec.1.wav").read_bytes() == b"RIFF" + bytes(100)


def test_a_file_that_changed_after_it_was_taken_is_never_removed(recording):
    taken = stat_entry(recording)
    with recording.open("ab") as f:
        f.write(b"more audio")
    assert apply_retention("delete", recording, taken) == Outcome.CHANGED
    assert recording.exists()
    assert apply_retention("delete", recording, None) == Outcome.CHANGED
    assert recording.exists()


def test_missing_file(recording, tmp_path):
    taken = stat_entry(recording)
    recording.unlink()
    assert apply_retention("delete", recording, taken) == Outcome.MISSING


def test_unknown_policy_raises(recording):
    with pytest.raises(ValueError, match="shred"):
        apply_retention("shred", recording, stat_entry(recording))


def test_move_of_a_255_byte_name_numbers_it_within_the_name_limit(tmp_path):
    spool, done = tmp_path / "spool", tmp_path / "done"
    spool.mkdir()
    done.mkdir()
    raw = ODD_NAMES["255 bytes"]
    name = os.fsdecode(raw)
    for _ in range(2):
        path = spool / name
        path.write_bytes(b"RIFF")
        assert apply_retention("move", path, stat_entry(path), done) == Outcome.MOVED
    moved = sorted(os.listdir(os.fsencode(done)))
    assert raw in moved
    assert [len(n) for n in moved] == [255, 255]
    assert next(n for n in moved if n != raw).endswith(b".1.wav")


def test_move_keeps_a_name_that_is_not_utf8(tmp_path):
    spool, done = tmp_path / "spool", tmp_path / "done"
    spool.mkdir()
    path = spool / odd_str(ODD_NAMES["not UTF-8"])
    path.write_bytes(b"RIFF")
    assert apply_retention("move", path, stat_entry(path), done) == Outcome.MOVED
    assert os.listdir(os.fsencode(done)) == [ODD_NAMES["not UTF-8"]]
