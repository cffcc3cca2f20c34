"""The local journal: SQLite in WAL mode, ``synchronous=FULL`` so every commit is fsynced (one per part).

Tables:
- ``queue``   the durable queue: path, size, enqueue time, failures, not_before, status, key, reason;
- ``uploads`` one row per upload in progress: upload id and the settings it was made with (JSON);
- ``parts``   each acknowledged part: number, ETag, size, object offset.
The server's ListParts stays the truth on resume; the journal says which upload id to ask about and with
which settings it was made. One connection, used under a lock from the engine's threads.

Paths are whatever bytes the file system allows: a path that is valid UTF-8 is stored as TEXT (as in every
journal written before), any other as a BLOB of its bytes, and read back as the surrogate-escaped ``str``
the os functions take (``fleet_base/filenames.py``). Reasons are stored as printable, valid UTF-8 text.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.queue import QueueEntry
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings
from fleet_base.filenames import name_from_sql, safe_text, sql_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL, failures INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'queued', key TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS uploads (
    path TEXT PRIMARY KEY, upload_id TEXT NOT NULL, key TEXT NOT NULL, settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    path TEXT NOT NULL, number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,
    offset INTEGER NOT NULL, PRIMARY KEY (path, number)
);
"""

QUEUED, DONE, REJECTED = "queued", "done", "rejected"


def _settings_json(s: UploadSettings) -> str:
    return json.dumps(asdict(s), sort_keys=True)


def _settings_from_json(text: str) -> UploadSettings:
    d = json.loads(text)
    return UploadSettings(
        key=d["key"],
        plan=PartPlan(**d["plan"]),
        header_size=d["header_size"],
        compression_level=d["compression_level"],
        fingerprint=tuple(d["fingerprint"]),
    )


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[object, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT, or ROLLBACK on any error (a failed write never leaves it open)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back itself (e.g. disk full)
                self._db.execute("ROLLBACK")
            raise

    # -- queue ------------------------------------------------------------------------------------------
    def enqueue(self, path: str, size: int, mtime_ns: int, now: float, recheck: bool) -> bool:
        """Queue ``path``; a file already done with the same size and mtime stays done unless ``recheck``.
        Returns whether it is (now) queued."""
        name = sql_name(path)
        with self._lock:
            row = self._db.execute("SELECT status, size, mtime_ns FROM queue WHERE path=?", (name,)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO queue (path, size, mtime_ns, enqueued_at) VALUES (?,?,?,?)",
                    (name, size, mtime_ns, now),
                )
                return True
            status, old_size, old_mtime = row
            if status == QUEUED:
                self._db.execute("UPDATE queue SET size=?, mtime_ns=? WHERE path=?", (size, mtime_ns, name))
                return True
            if not recheck and (old_size, old_mtime) == (size, mtime_ns):
                return False
            self._db.execute(
                "UPDATE queue SET status=?, size=?, mtime_ns=?, enqueued_at=?, failures=0, not_before=0, reason='' "
                "WHERE path=?",
                (QUEUED, size, mtime_ns, now, name),
            )
            return True

    def queued(self) -> list[QueueEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, enqueued_at, failures, not_before FROM queue WHERE status=?", (QUEUED,)
            ).fetchall()
        return [QueueEntry(name_from_sql(path), *rest) for path, *rest in rows]

    def update_entry(self, entry: QueueEntry, reason: str) -> None:
        self._write(
            "UPDATE queue SET failures=?, not_before=?, reason=? WHERE path=?",
            (entry.failures, entry.not_before, safe_text(reason), sql_name(entry.path)),
        )

    def finish_entry(self, path: str, status: str, key: str, reason: str) -> None:
        self._write(
            "UPDATE queue SET status=?, key=?, reason=? WHERE path=?",
            (status, safe_text(key), safe_text(reason), sql_name(path)),
        )

    def status(self, path: str) -> tuple[str, str, str] | None:
        """(status, key, reason) of a queued or finished file."""
        with self._lock:
            row = self._db.execute("SELECT status, key, reason FROM queue WHERE path=?", (sql_name(path),)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    # -- uploads in progress ----------------------------------------------------------------------------
    def upload(self, path: str) -> UploadRecord | None:
        name = sql_name(path)
        with self._lock:
            row = self._db.execute("SELECT upload_id, settings FROM uploads WHERE path=?", (name,)).fetchone()
            if row is None:
                return None
            parts = self._db.execute(
                "SELECT number, etag, size, offset FROM parts WHERE path=? ORDER BY number", (name,)
            ).fetchall()
        return UploadRecord(row[0], _settings_from_json(row[1]), tuple(StoredPart(*p) for p in parts))

    def start_upload(self, path: str, upload_id: str, settings: UploadSettings, now: float) -> None:
        name = sql_name(path)
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM parts WHERE path=?", (name,))
            self._db.execute(
                "INSERT OR REPLACE INTO uploads (path, upload_id, key, settings, created_at) VALUES (?,?,?,?,?)",
                (name, upload_id, settings.key, _settings_json(settings), now),
            )

    def add_part(self, path: str, part: StoredPart) -> None:
        self._write(
            "INSERT OR REPLACE INTO parts (path, number, etag, size, offset) VALUES (?,?,?,?,?)",
            (sql_name(path), part.number, part.etag, part.size, part.offset),
        )

    def drop_upload(self, path: str) -> None:
        name = sql_name(path)
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM parts WHERE path=?", (name,))
            self._db.execute("DELETE FROM uploads WHERE path=?", (name,))

    def uploads_in_progress(self) -> list[tuple[str, str, str]]:
        """(path, key, upload_id) of every upload the journal holds."""
        with self._lock:
            rows = self._db.execute("SELECT path, key, upload_id FROM uploads").fetchall()
        return [(name_from_sql(path), key, upload_id) for path, key, upload_id in rows]
