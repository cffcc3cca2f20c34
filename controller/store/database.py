"""The database: an engine from a URL (SQLite, the default, in WAL mode, or PostgreSQL through psycopg), the
tables created or brought up to date, UTC times, and the one dialect-specific statement (an upsert)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, create_engine

from controller.store import models  # (also registers the tables on SQLModel.metadata)

DEFAULT_DATABASE_URL = "sqlite:////var/lib/edgefleet/controller.db"


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str = DEFAULT_DATABASE_URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and their folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def create_all(engine: Engine) -> None:
    """Create missing tables (idempotent; safe when two controllers start together)."""
    SQLModel.metadata.create_all(engine, checkfirst=True)
    _add_columns(engine)
    _add_event_dedup(engine)


#: columns added to existing tables after their first release: (table, column) → SQL type and default
_ADDED_COLUMNS = {("agent", "reported_site"): "VARCHAR(128) NOT NULL DEFAULT ''"}


def _add_columns(engine: Engine) -> None:
    """``create_all`` does not add columns to an existing table: add the ones a newer version needs."""
    inspector = inspect(engine)
    for (table, column), ddl in _ADDED_COLUMNS.items():
        if column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


#: for a database made before the dedup indexes: keep the first row of each duplicate group
_DEDUP_DELETES = {
    "uq_upload_event_message": "DELETE FROM upload_event WHERE id NOT IN "
    "(SELECT MIN(id) FROM upload_event GROUP BY agent_id, at, seq, kind)",
    "uq_upload_event_completed": "DELETE FROM upload_event WHERE kind = 'upload_completed' AND id NOT IN "
    "(SELECT MIN(id) FROM upload_event WHERE kind = 'upload_completed' GROUP BY agent_id, key, sha256)",
}


def _add_event_dedup(engine: Engine) -> None:
    """``create_all`` does not add indexes to an existing table: add the event dedup indexes if missing."""
    have = {ix["name"] for ix in inspect(engine).get_indexes("upload_event")}
    for index in models.EVENT_DEDUP:
        if index.name in have:
            continue
        with engine.begin() as conn:
            conn.execute(text(_DEDUP_DELETES[str(index.name)]))
            index.create(conn, checkfirst=True)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: every stored time is UTC, so give it its zone back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_db_time(value: datetime) -> datetime:
    """Store every time as UTC (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: an INSERT that knows ``on_conflict_do_update`` and ``excluded``
Upsert = postgresql.Insert | sqlite.Insert


def upsert(session: Session, table: Table) -> Upsert:
    """A dialect INSERT that knows ``on_conflict_do_update`` (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database {dialect!r} is not supported (use SQLite or PostgreSQL)")
