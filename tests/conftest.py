"""Fixtures that start REAL services on free ports and always tear them down.

- ``mqtt_broker``: Mosquitto with a password file and ACL; ``add_user(name, role=...)``, ``url_for(name)``,
  ``login(name, role)`` (the URL of a user, made if new). The broker ties each client id to its user name: a
  second connection of a user takes over the first, so every connection of a test needs a user of its own.
- ``s3_server``: SeaweedFS ``weed mini`` with an admin key; ``endpoint``, ``bucket``, ``client()``, ``env()``,
  ``settings(identity)``; ``add_agent_identity(agent_id, prefix)`` gives a least-privilege identity (on the
  running session server it restarts it: prefer a private server from ``s3_server_factory`` or add it early).
- ``postgres``: the machine's PostgreSQL cluster, started when absent.
- ``database_url``: parametrised over SQLite (a fresh file) and PostgreSQL (an empty database, reused).

Session-scoped servers are shared by the tests of one run; tests that restart or break a server make their
own with the ``*_factory`` fixtures. Nothing uses fixed ports, so two runs side by side do not collide.

Parallel workers (pytest-xdist, ``-n``): each worker is a session of its own (its own servers, its own
PostgreSQL databases, named after the worker, and only those dropped at its end). ``--dist loadgroup`` is
``tests.workers.GroupScheduling``: the Ansible tests on one worker (one session deployment), the tests of a
module with a module-scoped fixture on one worker (the hostile corpora are built once), every other test on
its own; ``tests.workers.shared_path`` gives the workers of one run a folder to build something once for all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine
from xdist.remote import Producer

from controller.store.database import create_all, make_engine
from edgefleet.localservices import Mosquitto, Postgres, SeaweedS3, ServiceError
from tests.workers import GroupScheduling, worker_id, workers_for


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """The workers of ``-n auto`` (pyproject addopts): ``tests.workers.workers_for``."""
    return workers_for(config.option.markexpr or "", [str(a) for a in config.args], os.environ)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> GroupScheduling | None:
    """``--dist loadgroup`` (the default, pyproject addopts): ``tests.workers.GroupScheduling``; any other
    ``--dist`` is xdist's own."""
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    # Never restarted (tests that restart a broker take their own from mqtt_broker_factory), so no persistence:
    # Mosquitto 2.0.11 can crash on the config reloads that add_user needs when persistence is on.
    broker = Mosquitto(directory=tmp_path_factory.mktemp("mosquitto"), persistence=False)
    broker.add_user("controller", role="controller")
    with broker:
        yield broker


@pytest.fixture
def mqtt_broker_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Mosquitto]]:
    """A private broker per call, for tests that stop or restart it."""
    started: list[Mosquitto] = []

    def make() -> Mosquitto:
        broker = Mosquitto(directory=tmp_path_factory.mktemp("mosquitto-own"))
        broker.add_user("controller", role="controller")
        started.append(broker.start())
        return broker

    yield make
    for broker in started:
        broker.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(directory=tmp_path_factory.mktemp("s3")) as server:
        yield server
        server.stop(hard=True)  # the end of the run: its data goes with it, no ~2 s graceful shutdown


@pytest.fixture
def s3_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SeaweedS3]]:
    """A private S3 server per call, for tests that stop, restart or cut it. ``agents=[(agent_id, prefix), ...]``
    gives each agent its least-privilege identity (``server.identities[f"agent-{agent_id}"]``) from the start."""
    started: list[SeaweedS3] = []

    def make(agents: Sequence[tuple[str, str]] = (), **kwargs: object) -> SeaweedS3:
        server = SeaweedS3(directory=tmp_path_factory.mktemp("s3-own"), **kwargs)  # type: ignore[arg-type]
        for agent_id, prefix in agents:
            server.add_agent_identity(agent_id, prefix)
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop(hard=True)  # its data goes with it: no need for the ~2 s of a graceful SeaweedFS shutdown
        server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres(prefix=f"edgefleet_test_{worker_id()}")  # a worker drops only its own at the end
    try:
        pg.ensure_running()
    except ServiceError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield pg
    pg.drop_databases()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One SQLAlchemy URL per database kind: the same test runs on SQLite and on real PostgreSQL. Either is
    empty: a new SQLite file; a PostgreSQL database of an earlier test, emptied when this test takes it (every
    connection to it closed, everything in it dropped), or a new one: ~0.1 s instead of a CREATE DATABASE and,
    at the end of the run, a DROP DATABASE (a checkpoint each) per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edgefleet.db'}"
        return
    pg: Postgres = request.getfixturevalue("postgres")
    url = pg.empty_database()
    yield url
    pg.release(url)  # emptied by the next test that takes it, once everything of this test is torn down


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A fresh database of each kind with the current schema (``create_all``; a module that needs another start,
    e.g. the migrations, defines its own ``engine``)."""
    eng = make_engine(database_url)
    create_all(eng)
    yield eng
    eng.dispose()
