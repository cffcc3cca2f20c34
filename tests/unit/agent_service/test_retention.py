import pytest

from edge_agent.service.retention import Outcome, apply_retention
from edge_agent.service.spool import stat_entry


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
