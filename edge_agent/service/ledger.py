"""What the agent did with each spool file (queued / rejected / done), kept in ``state_dir/spool.db``.

It survives restarts so a queued file is not handed to the engine twice and a kept (retention = keep)
file is not uploaded again. Writes raise ``sqlite3.Error`` (e.g. disk full) for the caller to handle.
A name is stored as TEXT when it is valid UTF-8 and as a BLOB of its bytes otherwise (``fleet_base/filenames.py``):
any name the file system allows is kept exactly, and ledgers written before read the same.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.service.spool import FileStatus, SpoolEntry
from fleet_base.filenames import name_from_sql, sql_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    status TEXT NOT NULL
)
"""


class Ledger:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def load(self) -> dict[str, tuple[SpoolEntry, FileStatus]]:
        rows = self._db.execute("SELECT name, size, mtime_ns, inode, status FROM spool_files").fetchall()
        known: dict[str, tuple[SpoolEntry, FileStatus]] = {}
        for value, size, mtime_ns, inode, status in rows:
            name = name_from_sql(value)
            try:
                known[name] = (SpoolEntry(name, size, mtime_ns, inode), FileStatus(status))
            except ValueError:  # a status this version does not know: the file is looked at again
                continue
        return known

    def put(self, entry: SpoolEntry, status: FileStatus) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO spool_files (name, size, mtime_ns, inode, status) VALUES (?, ?, ?, ?, ?)",
            (sql_name(entry.name), entry.size, entry.mtime_ns, entry.inode, status.value),
        )

    def forget(self, names: list[str]) -> None:
        self._db.executemany("DELETE FROM spool_files WHERE name = ?", [(sql_name(n),) for n in names])

    def names(self) -> set[str]:
        return {name_from_sql(r[0]) for r in self._db.execute("SELECT name FROM spool_files")}

    def close(self) -> None:
        self._db.close()
