"""The database: an engine from a URL (SQLite, the default, in WAL mode, or PostgreSQL through psycopg), UTC
times, and the one dialect-specific statement (an upsert). The tables are made by the migrations
(``controller.store.schema``)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

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
    """Make the tables of a new database, or bring an old one up to date: the migrations to the newest revision,
    under their lock (``controller.store.schema.migrate``). For tests and tools; the services check the revision
    at start and migrate only when configured to."""
    from controller.store.schema import migrate  # the schema module imports this one

    migrate(engine)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: every stored time is UTC, so give it its zone back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def answers(engine: Engine) -> bool:
    """Whether the database answers a trivial query now (any error: no)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def to_db_time(value: datetime) -> datetime:
    """Store every time as UTC (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: ``pg_advisory_xact_lock`` key that orders the transactions writing ``agent`` rows (any constant all agree on)
AGENT_WRITES_LOCK_KEY = 0x6564_6765_666C_7402


def lock_agent_writes(session: Session) -> None:
    """On PostgreSQL, wait until no other transaction that writes many ``agent`` rows holds the agent-writes lock,
    and hold it until this transaction ends. Two controllers write the same rows (both store every birth and
    state; telemetry of one agent may reach either); a batch's statements each go in key order but one after
    another, so two such transactions could each hold a row the other's next statement wants: a deadlock, which
    PostgreSQL resolves by aborting one, whose whole batch is then retried. Taking this one lock first makes
    them take turns instead. (SQLite has a single writer anyway.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AGENT_WRITES_LOCK_KEY})


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
