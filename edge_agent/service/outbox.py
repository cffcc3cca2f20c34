"""Events the broker has not acknowledged yet, kept in ``state_dir/outbox.db``: ``kill -9`` or a power cut loses none.

paho keeps unacknowledged QoS 1 messages in memory only: an event published while the broker is away (or in the
round trip before its PUBACK) would die with the process. The link stores each event here before publishing it
and removes it once the broker acknowledged it; at the next start whatever is left is published again first.
A message may so be delivered twice (stored, published, acknowledged, killed before the removal): the controller
keeps one copy (same payload, same ``agent_id``/``seq``/``sent_at``). Writes raise ``sqlite3.Error`` for the
caller to handle (the link then publishes from memory only, as before).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
)
"""


class Outbox:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def add(self, topic: str, payload: bytes) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
        return int(cursor.lastrowid or 0)

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def pending(self) -> list[tuple[int, str, bytes]]:
        """Oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
