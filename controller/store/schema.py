"""The database schema's version: Alembic migrations (``controller/store/migrations``), configured here in code.

- ``check(engine)``: at start the controller and the dashboard refuse a database that is not at this release's
  head revision (``SchemaError`` says what to run).
- ``migrate(engine)``: bring it to head (or to another revision, up or down) under a lock, so that two
  controllers starting together never both migrate: PostgreSQL ``pg_advisory_xact_lock`` (the whole migration
  is one transaction), SQLite an exclusive lock on ``<database>.migrate-lock`` next to the file. An empty
  database is made by the migrations; one made by a release before migrations (tables, no revision) is first
  given what those releases added at start, then stamped as the baseline and upgraded.
- ``new_revision(message)``: autogenerate the next revision from the models (``scripts/new_migration.sh``).

Run as ``python -m controller.store.schema new "message"`` (developers) — operators use
``edgefleet controller --config controller.toml --migrate [REVISION]``.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.rewriter import Rewriter
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Column, Connection, Engine, inspect, text
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from controller.store import models  # registers the tables on SQLModel.metadata

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: the revision of the schema as the last release without migrations made it
BASELINE = "0001"
#: ``pg_advisory_xact_lock`` key of the migration lock (any constant both controllers agree on)
PG_LOCK_KEY = 0x6564_6765_666C_7401
MIGRATE_HINT = "edgefleet controller --config controller.toml --migrate"


class SchemaError(Exception):
    """The database is not at the revision this release needs; the message says why and what to run."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # the database's revision (None: unversioned)
    head: str  # this release's
    tables: frozenset[str]

    @property
    def legacy(self) -> bool:
        """Made by a release before migrations: its tables, no revision."""
        return self.current is None and "agent" in self.tables

    def problem(self, known: bool) -> str | None:
        """Why this release cannot run on the database (``known``: this release has its revision), or None."""
        if self.current == self.head:
            return None
        if self.current is None:
            what = "was made by a release without migrations" if self.legacy else "has no tables yet"
            return f"the database {what}: run `{MIGRATE_HINT}` (or set database_migrate = true)"
        if not known:
            return (
                f"the database is at revision {self.current}, which this release does not know (a newer release "
                f"migrated it): run that release, or roll the database back with it to {self.head}"
            )
        return f"the database is at revision {self.current}, this release needs {self.head}: run `{MIGRATE_HINT}`"


# --- Alembic, configured in code ------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration: the migrations shipped in the package, ``connection`` for env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():  # a developer's checkout: new revisions come out formatted
        config.set_section_option("post_write_hooks", "hooks", "ruff")
        config.set_section_option("post_write_hooks", "ruff.type", "exec")
        config.set_section_option("post_write_hooks", "ruff.executable", str(ruff))
        config.set_section_option("post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME")
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    """The revisions this release ships (read once)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """This release's newest revision (raises if the revisions have two heads: a merge left them forked)."""
    revision = scripts().get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return revision


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Revisions use plain SQLAlchemy types: SQLModel's ``AutoString`` is rendered as ``sa.String``."""
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


_rewrite = Rewriter()


@_rewrite.rewrites(ops.AddColumnOp)
def _fill_existing_rows(_context: Any, _revision: Any, op: ops.AddColumnOp) -> ops.AddColumnOp:
    """A new NOT NULL column of an existing table needs a value for the rows already there: its model default,
    as a server default (databases refuse the column otherwise)."""
    column = op.column
    literal = _sql_literal(getattr(column.default, "arg", None))
    if column.nullable or column.server_default is not None or literal is None:
        return op
    filled = Column(column.name, column.type, nullable=False, server_default=text(literal), comment=column.comment)
    return ops.AddColumnOp(op.table_name, filled, schema=op.schema)


def _sql_literal(value: object) -> str | None:
    """``value`` as an SQL literal both databases read alike, or None when it is not a plain constant."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def _context_options() -> dict[str, Any]:
    """How migrations run and compare, also for the tests' model-versus-migrations check."""
    return {
        "target_metadata": SQLModel.metadata,
        "render_as_batch": True,
        "render_item": _render_item,
        "process_revision_directives": _rewrite,
    }


def run_migrations(context: Any) -> None:
    """The body of env.py: run the migrations on the connection ``migrate`` gave."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations through controller.store.schema (it opens the connection)")
    context.configure(connection=connection, **_context_options())
    with context.begin_transaction():
        context.run_migrations()


def differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty: they match)."""
    return list(compare_metadata(MigrationContext.configure(connection, opts=_context_options()), SQLModel.metadata))


# --- the state, the check and the migration -------------------------------------------------------


def _state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current, head(), frozenset(inspect(connection).get_table_names()))


def state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return _state(connection)


def check(engine: Engine) -> None:
    """Raise ``SchemaError`` unless the database is at this release's head revision."""
    found = state(engine)
    problem = found.problem(known=_known(found.current))
    if problem is not None:
        raise SchemaError(problem)


def wait_for_head(engine: Engine, timeout_s: float, *, poll_s: float = 1.0) -> None:
    """``check``, waiting up to ``timeout_s`` for a database that is behind to be brought to head (a controller
    may be migrating it right now, e.g. at a first start). A revision this release does not know is refused at
    once."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = state(engine)
        known = _known(found.current)
        problem = found.problem(known=known)
        if problem is None:
            return
        if not known or time.monotonic() >= deadline:
            raise SchemaError(problem)
        log.info("waiting for the database to be migrated to %s: %s", found.head, problem)
        time.sleep(poll_s)


def _known(revision: str | None) -> bool:
    try:
        return revision is None or scripts().get_revision(revision) is not None
    except CommandError:
        return False


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, held by this process alone among those that migrate."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield connection
        return
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        with engine.begin() as connection:  # no other process can reach it
            yield connection
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until closed; the kernel drops it if the process dies
        with engine.begin() as connection:
            yield connection


def migrate(engine: Engine, target: str = "head") -> SchemaState:
    """Bring the database to ``target`` (``head``, a revision, ``-1``, ``base``; up or down as needed) under the
    migration lock; returns the state it found. Raises ``SchemaError`` for a revision this release does not
    know."""
    with _locked(engine) as connection:
        found = _state(connection)
        config = alembic_config(connection)
        try:
            if found.legacy:
                log.info("database made by a release without migrations: stamped as %s", BASELINE)
                _catch_up_legacy(connection)
                command.stamp(config, BASELINE)
            if _is_downgrade(found.current, target):
                command.downgrade(config, target)
            else:
                command.upgrade(config, target)
        except CommandError as exc:
            raise SchemaError(f"cannot migrate the database to {target}: {exc}") from exc
    return found


def _is_downgrade(current: str | None, target: str) -> bool:
    if target.startswith("-") or target == "base":
        return True
    if current is None or target in ("head", "heads") or target.startswith("+"):
        return False
    older = {script.revision for script in scripts().iterate_revisions(current, "base")}
    return target in older - {current}


# --- releases before migrations ---------------------------------------------------------------------

#: what the last releases without migrations added at start to a database made by an earlier one
_LEGACY_COLUMNS = {("agent", "reported_site"): "VARCHAR(128) NOT NULL DEFAULT ''"}
#: before the event dedup indexes: keep the first row of each duplicate group
_DEDUP_DELETES = {
    "uq_upload_event_message": "DELETE FROM upload_event WHERE id NOT IN "
    "(SELECT MIN(id) FROM upload_event GROUP BY agent_id, at, seq, kind)",
    "uq_upload_event_completed": "DELETE FROM upload_event WHERE kind = 'upload_completed' AND id NOT IN "
    "(SELECT MIN(id) FROM upload_event WHERE kind = 'upload_completed' GROUP BY agent_id, key, sha256)",
}


def _catch_up_legacy(connection: Connection) -> None:
    """An unversioned database is the baseline once it has what the last release added at start."""
    inspector = inspect(connection)
    for (table, column), ddl in _LEGACY_COLUMNS.items():
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
    have = {ix["name"] for ix in inspector.get_indexes("upload_event")}
    for index in models.EVENT_DEDUP:
        if index.name not in have:
            connection.execute(text(_DEDUP_DELETES[str(index.name)]))
            index.create(connection)


# --- new revisions (developers) ---------------------------------------------------------------------


def new_revision(message: str) -> Path | None:
    """Autogenerate the next revision (``0002_<message>.py``, …) from the difference between the models and
    the migrations, on a scratch SQLite database; None when there is no difference. Review it before
    committing: autogenerate misses renames (it drops and adds) and server defaults."""
    from controller.store.database import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            migrate(engine)
            with engine.begin() as connection:
                if not differences(connection):
                    return None
                number = len(list(scripts().walk_revisions())) + 1
                script = command.revision(
                    alembic_config(connection), message, autogenerate=True, rev_id=f"{number:04d}"
                )
        finally:
            engine.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError(f"alembic wrote no single revision: {script!r}")
    return Path(script.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.store.schema", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("new", help="autogenerate the next revision from the models").add_argument("message")
    sub.add_parser("heads", help="print this release's head revision")
    args = parser.parse_args(argv)
    if args.action == "heads":
        print(head())
        return 0
    path = new_revision(args.message)
    if path is None:
        print("the models match the migrations: no revision written")
        return 1
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: review it")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
