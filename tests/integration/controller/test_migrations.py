"""Database migrations on SQLite AND PostgreSQL: a database of the previous release is upgraded without losing a
row, the models match the migrations, the services refuse an outdated database, ``--migrate`` and its lock."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from controller.config import parse_config
from controller.service.app import Controller
from controller.store import repo
from controller.store.database import make_engine
from controller.store.models import EVENT_DEDUP
from controller.store.schema import (
    BASELINE,
    PG_LOCK_KEY,
    SchemaError,
    check,
    differences,
    head,
    migrate,
    state,
    wait_for_head,
)
from edgefleet.demo.layout import write_toml
from edgefleet.localservices import Postgres
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
#: the last release without migrations (main before them); a commit, since tags may not travel with a clone
PREVIOUS_RELEASE = "417487d564642153f1451165f1ac7ade7df42b6e"
RUN_TIMEOUT_S = 300

#: run with that release's code only: makes its store and writes rows into every table through its own API
FILL_WITH_PREVIOUS_RELEASE = """
import sys
from datetime import UTC, datetime, timedelta

import controller
assert controller.__file__.startswith(sys.argv[2]), controller.__file__  # that release's code, not ours

from sqlmodel import Session

from controller.policy import Decision, PolicyState
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch, write_dead_letter
from controller.store.assignments import Proposal, commit_decisions
from controller.store.instances import heartbeat
from fleet_protocol.assignment import AssignmentSettings
from fleet_protocol.messages import Birth, Event, State, Telemetry
from fleet_protocol.vocabulary import EventKind

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
engine = repo.make_engine(sys.argv[1])
repo.create_all(engine)
agents = ["pi-1", "pi-2", "pi-3"]
batch = IngestBatch()
for n, agent in enumerate(agents):
    at = T0 + timedelta(seconds=n)
    birth = Birth(agent_id=agent, seq=0, sent_at=at, model="Pi 4", cores=4, ram_bytes=8 << 30,
                  software_version="1.0", flac_encode_bps=3e7, site="garden")
    batch.births.append((birth, at))
    batch.states.append((State(agent_id=agent, seq=1, sent_at=at, state="online"), at))
    for seq in (2, 3):
        t = at + timedelta(seconds=5 * seq)
        reading = Telemetry(agent_id=agent, seq=seq, sent_at=t, temperature_c=50.0 + seq, backlog_bytes=seq << 30)
        batch.telemetry.append((reading, t))
    event = Event(agent_id=agent, seq=4, sent_at=at, kind=EventKind.UPLOAD_COMPLETED, file="a.wav",
                  key=f"k/{agent}/a.flac", original_bytes=10, stored_bytes=5, original_sha256="a" * 64,
                  stored_as="flac")
    batch.events.append((event, at))
batch.reject("telemetry:PayloadError", "not JSON", "edgefleet/v1/agents/pi-1/telemetry", T0)
settings = AssignmentSettings(concurrency=2, part_size=8 << 20, windows=("22:00-06:00",))
decision = Decision(settings, "c=2", PolicyState(thermal_level=1, cool_since=T0))
with Session(engine) as session:
    write_batch(session, batch, {"pi-1": 2}, sites={"pi-1": "north", "pi-2": "north"})
    write_dead_letter(session, topic="t/x", payload=b"\\x00\\xff", received=T0, reason="telemetry:Unstorable",
                      error="boom", controller_id="ctl-1")
    commit_decisions(session, [Proposal(a, decision) for a in agents], controller_id="ctl-1", now=T0)
    repo.set_override(session, who="ops", site="north", paused=True, note="storm", now=T0)
    repo.set_override(session, who="ops", agent_id="pi-3", concurrency_cap=1, now=T0)
    heartbeat(session, "ctl-1", now=T0, started_at=T0, ttl_s=30)
engine.dispose()
"""


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's Python packages, from its commit (``git archive``)."""
    if subprocess.run(["git", "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], cwd=ROOT).returncode:
        message = f"commit {PREVIOUS_RELEASE} is not in this clone (fetch the history: git fetch --unshallow)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    archive = subprocess.run(
        [
            "git",
            "archive",
            "--format=tar",
            PREVIOUS_RELEASE,
            "fleet_base",
            "fleet_protocol",
            "fleet_plan",
            "controller",
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    where = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    (where / "fill.py").write_text(FILL_WITH_PREVIOUS_RELEASE)
    return where


def fill_with_previous_release(release: Path, database_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(release)}
    done = subprocess.run(
        [sys.executable, str(release / "fill.py"), database_url, str(release)],
        cwd=release,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def snapshot(engine: Engine, columns: dict[str, list[str]] | None = None) -> dict[str, dict[str, Any]]:
    """Every row of every table (of ``columns``' tables and columns, default: all but alembic_version)."""
    with engine.connect() as conn:
        if columns is None:
            inspector = inspect(conn)
            names = [t for t in inspector.get_table_names() if t != "alembic_version"]
            columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in names}
        out = {}
        for table, cols in columns.items():
            rows = conn.execute(text(f"SELECT {', '.join(cols)} FROM {table}")).all()
            out[table] = {"columns": cols, "rows": sorted((tuple(r) for r in rows), key=repr)}
    return out


# --- (a) the previous release's database ---------------------------------------------------------------------


def test_a_database_of_the_previous_release_is_upgraded_without_losing_a_row(
    previous_release: Path, database_url: str, engine: Engine
) -> None:
    fill_with_previous_release(previous_release, database_url)
    before = snapshot(engine)
    assert len(before) == 10, sorted(before)
    assert all(table["rows"] for table in before.values()), {t: len(v["rows"]) for t, v in before.items()}
    with pytest.raises(SchemaError, match="release without migrations"):
        check(engine)

    found = migrate(engine)

    assert found.legacy
    assert state(engine).current == head()
    after = snapshot(engine, {table: value["columns"] for table, value in before.items()})
    assert after == before
    with engine.connect() as conn:
        assert differences(conn) == []
    with Session(engine) as session:  # read through this release's store
        agent = repo.get_agent(session, "pi-1")
        assert agent is not None
        assert (agent.site, agent.reported_site, agent.model) == ("north", "garden", "Pi 4")
        assert len(repo.telemetry_history(session, "pi-2")) == 2
        assert {o.target for o in repo.list_overrides(session)} == {"north", "pi-3"}
        assert repo.reject_counts(session)["telemetry:PayloadError"] == 1
        assert [d.topic for d in repo.dead_letters(session)] == ["t/x"]
        assert repo.assignment_history(session, "pi-3")[0].concurrency == 2
    check(engine)


def test_an_older_unversioned_database_is_brought_to_the_baseline_first(engine: Engine) -> None:
    """A release before the last one had no ``reported_site`` and no event dedup indexes (the last release
    added them at start): they are added, duplicates dropped, then the database is stamped."""
    migrate(engine, BASELINE)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE agent DROP COLUMN reported_site"))
        for index in EVENT_DEDUP:
            index.drop(conn)
        for _ in range(3):
            conn.execute(
                text(
                    "INSERT INTO upload_event (agent_id, kind, file, key, original_bytes, stored_bytes, sha256, "
                    "stored_as, duration_s, retries, reason, at, seq) VALUES ('pi', 'upload_completed', 'a.wav', "
                    "'k', 1, 1, :sha, 'flac', 0, 0, '', '2026-01-01 00:00:00', 1)"
                ),
                {"sha": "a" * 64},
            )
    assert state(engine).legacy

    migrate(engine)

    assert state(engine).current == head()
    with engine.connect() as conn:
        assert differences(conn) == []
        assert conn.execute(text("SELECT count(*) FROM upload_event")).scalar() == 1


# --- (b) the models and the migrations ---------------------------------------------------------------------


def test_the_models_match_the_migrations_and_they_roll_back(engine: Engine) -> None:
    found = migrate(engine)
    assert (found.current, found.tables) == (None, frozenset())
    with engine.connect() as conn:
        assert differences(conn) == []

    migrate(engine, "base")
    assert state(engine).tables == {"alembic_version"}
    migrate(engine, BASELINE)
    assert state(engine).current == BASELINE
    migrate(engine)
    with engine.connect() as conn:
        assert differences(conn) == []
    assert migrate(engine).current == head()  # at head: nothing to do


# --- (c) refusing to start, and --migrate -------------------------------------------------------------------


def cli(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def controller_toml(tmp_path: Path, database_url: str, **settings: Any) -> Path:
    data = {"database_url": database_url, "mqtt": {"url": "mqtt://c:p@127.0.0.1:1"}, **settings}
    return write_toml(tmp_path / "controller.toml", data)


def test_the_services_refuse_an_outdated_database_and_migrate_says_what_it_did(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    conf = controller_toml(tmp_path, database_url)
    dashboard = write_toml(
        tmp_path / "dashboard.toml",
        {"database_url": database_url, "secret_key": "s" * 32, "port": 0, "schema_wait_s": 0},
    )
    for service, config in (("controller", conf), ("dashboard", dashboard)):
        refused = cli(service, "--config", str(config))
        assert refused.returncode == 2, refused.stderr
        assert "has no tables yet: run `edgefleet controller --config controller.toml --migrate`" in refused.stderr

    done = cli("controller", "--config", str(conf), "--migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"unversioned -> {head()}")
    check(engine)
    again = cli("controller", "--config", str(conf), "--migrate")
    assert again.stdout.strip().endswith(f"{head()} -> {head()}")

    back = cli("controller", "--config", str(conf), "--migrate", "base")
    assert back.returncode == 0, back.stderr
    assert state(engine).current is None


def test_an_unknown_revision_is_refused_by_the_check_and_by_migrate(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaError, match="revision ffff, which this release does not know"):
        check(engine)
    with pytest.raises(SchemaError, match="cannot migrate"):
        migrate(engine)


def test_the_controller_migrates_at_start_only_when_configured_to(
    database_url: str, engine: Engine, start_controller: Any
) -> None:
    config = parse_config({"database_url": database_url, "mqtt": {"url": "mqtt://c:p@127.0.0.1:1"}}, env={})
    with pytest.raises(SchemaError, match="--migrate"):
        Controller(config).start()
    assert state(engine).current is None

    controller = start_controller(database_url, database_migrate=True)
    assert state(engine).current == head()
    controller.stop()
    start_controller(database_url, database_migrate=False)  # at head: starts


def test_the_dashboard_waits_for_a_migration_in_progress(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="controller.store.schema")
    failed: list[BaseException] = []

    def dashboard_start() -> None:
        try:
            wait_for_head(engine, RUN_TIMEOUT_S, poll_s=0.05)
        except BaseException as exc:
            failed.append(exc)

    waiting = threading.Thread(target=dashboard_start)
    waiting.start()
    wait_for(lambda: "waiting for the database to be migrated" in caplog.text, 60, "the dashboard waiting")
    migrate(engine)
    waiting.join(RUN_TIMEOUT_S)
    assert not waiting.is_alive()
    assert failed == []


# --- (d) two at once -------------------------------------------------------------------------------------


def _waiting_for_the_lock(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = :low"),
                {"low": PG_LOCK_KEY & 0xFFFFFFFF},
            ).scalar_one()
        )


def test_two_controllers_migrating_at_once_one_migrates_the_other_waits_and_finds_head(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.create_database()
    engine = make_engine(url)
    conf = controller_toml(tmp_path, url)
    argv = [sys.executable, "-m", "edgefleet.cli", "controller", "--config", str(conf), "--migrate"]
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})  # both must queue behind it
        holder.commit()
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
        try:
            wait_for(lambda: _waiting_for_the_lock(engine) == 2, timeout=120, what="both waiting for the lock")
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
            holder.commit()
        outputs = [p.communicate(timeout=RUN_TIMEOUT_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out.strip().rsplit(": ", 1)[-1] for out, _ in outputs)
    assert said == sorted([f"unversioned -> {head()}", f"{head()} -> {head()}"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert differences(conn) == []
    engine.dispose()
