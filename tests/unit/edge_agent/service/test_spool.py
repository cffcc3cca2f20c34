import os

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.service.spool import FileStatus, SpoolEntry, SpoolTracker, list_spool
from tests.oddnames import ODD_NAMES, odd_str


def entry(name: str = "a.wav", size: int = 100, mtime: int = 1, inode: int = 7) -> SpoolEntry:
    return SpoolEntry(name, size, mtime, inode)


def test_a_file_is_offered_only_after_it_was_stable_for_settle_seconds():
    tracker = SpoolTracker(settle_seconds=30)
    assert tracker.observe([entry()], now=0) == []
    assert tracker.observe([entry()], now=29.9) == []
    assert tracker.observe([entry()], now=30) == [entry()]


def test_any_change_restarts_the_settle_clock():
    tracker = SpoolTracker(settle_seconds=10)
    tracker.observe([entry(size=100)], now=0)
    assert tracker.observe([entry(size=200)], now=9) == []  # grew
    assert tracker.observe([entry(size=200)], now=18) == []
    assert tracker.observe([entry(size=200, mtime=2)], now=19) == []  # touched
    assert tracker.observe([entry(size=200, mtime=2, inode=8)], now=28) == []  # replaced
    assert tracker.observe([entry(size=200, mtime=2, inode=8)], now=38) == [entry(size=200, mtime=2, inode=8)]


def test_not_ready_restarts_the_clock_and_handled_files_are_not_offered_again():
    tracker = SpoolTracker(settle_seconds=5)
    tracker.observe([entry()], now=0)
    assert tracker.observe([entry()], now=5) == [entry()]
    tracker.not_ready("a.wav", now=5)
    assert tracker.observe([entry()], now=9) == []
    assert tracker.observe([entry()], now=10) == [entry()]
    tracker.mark(entry(), FileStatus.QUEUED)
    assert tracker.observe([entry()], now=100) == []
    assert tracker.status("a.wav") == FileStatus.QUEUED


def test_a_handled_file_that_changes_settles_again_like_a_new_one():
    tracker = SpoolTracker(settle_seconds=5)
    tracker.observe([entry()], now=0)
    tracker.mark(entry(), FileStatus.REJECTED)
    assert tracker.observe([entry(size=300)], now=6) == []
    assert tracker.observe([entry(size=300)], now=11) == [entry(size=300)]


def test_vanished_files_are_forgotten_and_restore_seeds_the_ledger():
    tracker = SpoolTracker(settle_seconds=0)
    tracker.restore({"a.wav": (entry(), FileStatus.DONE)}, now=0)
    assert tracker.observe([entry(), entry("b.wav", mtime=0)], now=0) == [entry("b.wav", mtime=0)]
    tracker.observe([], now=1)
    assert tracker.status("a.wav") is None
    assert tracker.observe([entry()], now=2) == [entry()]


def test_ready_files_come_oldest_first():
    tracker = SpoolTracker(settle_seconds=0)
    files = [entry("c.wav", mtime=3), entry("a.wav", mtime=2), entry("b.wav", mtime=1)]
    assert [e.name for e in tracker.observe(files, now=0)] == ["b.wav", "a.wav", "c.wav"]


@given(
    settle=st.floats(min_value=0, max_value=100),
    steps=st.lists(st.tuples(st.floats(min_value=0, max_value=50), st.booleans()), min_size=1, max_size=30),
)
def test_never_offered_before_it_was_unchanged_for_settle_seconds(settle, steps):
    """Property: whenever a file is offered, its current signature was first seen >= settle seconds ago."""
    tracker = SpoolTracker(settle_seconds=settle)
    now, size, first_seen = 0.0, 0, None
    for dt, grows in steps:
        now += dt
        if grows or first_seen is None:
            size += 1
            first_seen = now
        offered = tracker.observe([entry(size=size)], now)
        assert bool(offered) == (now - first_seen >= settle)


def test_list_spool_stats_only_matching_regular_visible_files(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x" * 10)
    (tmp_path / "B.WAV").write_bytes(b"y")
    (tmp_path / ".partial.wav").write_bytes(b"z")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / "dir.wav").mkdir()
    os.symlink(tmp_path / "a.wav", tmp_path / "link.wav")
    found = {e.name: e for e in list_spool(tmp_path, [".wav"])}
    assert set(found) == {"a.wav", "B.WAV"}
    assert found["a.wav"].size == 10
    assert found["a.wav"].inode == (tmp_path / "a.wav").stat().st_ino


def test_a_file_set_aside_waits_longer_after_each_failure_unless_it_changes():
    tracker = SpoolTracker(settle_seconds=0)
    assert tracker.observe([entry()], now=0) == [entry()]
    assert tracker.set_aside("a.wav", now=0) == 30
    assert tracker.observe([entry()], now=29) == []
    assert tracker.observe([entry()], now=30) == [entry()]
    assert tracker.set_aside("a.wav", now=30) == 90  # 60 s after the second failure
    assert tracker.observe([entry()], now=89) == []
    assert tracker.observe([entry(size=5)], now=89) == [entry(size=5)]  # a new version: tried at once
    assert tracker.set_aside("gone.wav", now=1) == 1  # unknown: nothing to hold back


def test_list_spool_takes_any_name_the_file_system_allows(tmp_path):
    for raw in ODD_NAMES.values():
        with open(os.path.join(os.fsencode(tmp_path), raw), "wb") as f:
            f.write(b"x")
    found = {e.name for e in list_spool(tmp_path, [".wav"])}
    assert found == {odd_str(raw) for raw in ODD_NAMES.values()}
