"""The spool ledger keeps every file name the file system allows, exactly (edge_agent/service/ledger.py)."""

import sqlite3

from edge_agent.service.ledger import Ledger
from edge_agent.service.spool import FileStatus, SpoolEntry
from tests.oddnames import ODD_NAMES, odd_str


def test_odd_names_survive_a_reopen_and_can_be_forgotten(tmp_path):
    ledger = Ledger(tmp_path / "spool.db")
    entries = [SpoolEntry(odd_str(raw), i, i + 1, i + 2) for i, raw in enumerate(ODD_NAMES.values())]
    for entry in entries:
        ledger.put(entry, FileStatus.QUEUED)
    ledger.put(entries[0], FileStatus.DONE)  # replaces, never a second row
    ledger.close()
    ledger = Ledger(tmp_path / "spool.db")
    known = ledger.load()
    assert known == {e.name: (e, FileStatus.DONE if e is entries[0] else FileStatus.QUEUED) for e in entries}
    ledger.forget([entries[0].name, entries[1].name])
    assert ledger.names() == {e.name for e in entries[2:]}


def test_a_ledger_written_before_reads_the_same_and_an_unknown_status_is_looked_at_again(tmp_path):
    Ledger(tmp_path / "spool.db").close()
    db = sqlite3.connect(tmp_path / "spool.db")
    db.execute("INSERT INTO spool_files VALUES ('café.wav', 1, 2, 3, 'done')")
    db.execute("INSERT INTO spool_files VALUES ('future.wav', 1, 2, 3, 'quarantined')")
    db.commit()
    db.close()
    assert Ledger(tmp_path / "spool.db").load() == {"café.wav": (SpoolEntry("café.wav", 1, 2, 3), FileStatus.DONE)}
