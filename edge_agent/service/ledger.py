"""What the agent did with each spool file (queued / rejected / done), kept in ``state_dir/spool.db``.

It survives restarts so a queued file is not handed to the engine twice and a kept (retention = keep)
file is not uploaded again. Writes raise ``sqlite3.Error`` (e.g. disk full) for the caller to handle.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.service.spool import FileStatus, SpoolEntry

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
        return {r[0]: (SpoolEntry(r[0], r[1], r[2], r[3]), FileStatus(r[4])) for r in rows}

    def put(self, entry: SpoolEntry, status: FileStatus) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO spool_files (name, size, mtime_ns, inode, status) VALUES (?, ?, ?, ?, ?)",
            (entry.name, entry.size, entry.mtime_ns, entry.inode, status.value),
        )

    def forget(self, names: list[str]) -> None:
        self._db.executemany("DELETE FROM spool_files WHERE name = ?", [(n,) for n in names])

    def names(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM spool_files")}

    def close(self) -> None:
        self._db.close()
