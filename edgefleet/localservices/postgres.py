"""The machine's PostgreSQL (Debian cluster ``15/main``), started when absent; one scratch database per user."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet.localservices.process import ServiceError, exclusive, wait_until

_SAFE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_START_LOCK = Path(tempfile.gettempdir()) / "edgefleet-postgres-start.lock"


def _psql(sql: str, database: str = "postgres", timeout: float = 60) -> str:
    """Run ``sql`` as ``postgres``; several statements, one a line, run one after another outside any transaction
    block (``CREATE``/``DROP DATABASE`` allow no other), in one psql process (each process costs ~50 ms)."""
    result = subprocess.run(
        _as_postgres(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", "-"]),
        input=sql,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise ServiceError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _as_postgres(argv: list[str]) -> list[str]:
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-c", " ".join(argv)]


@dataclass
class Postgres:
    """Connects as ``postgres`` over the local socket (peer auth for the OS user ``postgres``).

    Databases are made with a password-authenticated role, so the app connects by URL like in production.
    Each instance drops only the databases it made: parallel test workers (one instance each, their own
    ``prefix``) share the cluster and never drop each other's.
    """

    version: str = "15"
    cluster: str = "main"
    prefix: str = "edgefleet_test"  # the default name prefix of ``create_database``
    created: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # URLs of databases given back with ``release``
    _port: int | None = field(default=None, init=False, repr=False)

    def ensure_running(self) -> None:
        if shutil.which("pg_ctlcluster") is None:
            raise ServiceError("PostgreSQL is not installed (pg_ctlcluster missing)")
        if "online" not in self._cluster_line():
            self._start()
        wait_until(lambda: _psql("select 1") == "1", 30, "PostgreSQL")

    def _cluster_line(self) -> str:
        """This cluster's line of ``pg_lsclusters -h``: version, name, port, status, ..."""
        status = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
        line = next((ln for ln in status.splitlines() if ln.split()[:2] == [self.version, self.cluster]), "")
        if not line:
            raise ServiceError(f"no PostgreSQL cluster {self.version}/{self.cluster}: {status!r}")
        return line

    def _start(self) -> None:
        """Start the cluster unless another process (a parallel test worker) did while this one waited."""
        with exclusive(_START_LOCK):
            if "online" in self._cluster_line():
                return
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.cluster, "start"],
                check=True,
                capture_output=True,
                timeout=60,
            )

    @property
    def port(self) -> int:
        """The cluster's port (read once: ``pg_lsclusters`` takes ~50 ms and the port never changes under us)."""
        if self._port is None:
            self._port = self._read_port()
        return self._port

    def _read_port(self) -> int:
        return int(self._cluster_line().split()[2])

    def create_database(self, prefix: str | None = None) -> str:
        """A fresh database and owner role; returns a SQLAlchemy URL (psycopg 3 driver)."""
        name = f"{prefix or self.prefix}_{secrets.token_hex(4)}"
        if not _SAFE.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        password = secrets.token_hex(12)
        _psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}';\nCREATE DATABASE {name} OWNER {name};")
        self.created.append(name)
        return f"postgresql+psycopg://{name}:{password}@127.0.0.1:{self.port}/{name}"

    def empty_database(self) -> str:
        """A database with nothing in it: one given back with ``release``, emptied (its connections closed, every
        object its owner made dropped), else a new one. Cheaper than ``create_database`` and a drop at the end:
        ``CREATE DATABASE`` copies and logs a template, and every ``DROP DATABASE`` forces a checkpoint."""
        if not self.released:
            return self.create_database()
        url = self.released.pop()
        name = url.rsplit("/", 1)[1]
        if not _SAFE.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        # one psql: end every connection to it (DROP OWNED then waits for the locks they held), connect to it,
        # drop everything its owner made there, and count who else is connected by then
        others = f"FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        out = _psql(
            f"SELECT count(pg_terminate_backend(pid)) {others};\n"
            f"\\c {name}\nDROP OWNED BY {name} CASCADE;\nSELECT count(*) {others};\n"
        )
        if out.splitlines()[-1] != "0":  # something of an earlier test connected again: leave it that database
            return self.create_database()
        return url

    def release(self, url: str) -> None:
        """Give back a database of ``create_database`` or ``empty_database`` whose user is done with it: the next
        ``empty_database`` empties and reuses it (``drop_databases`` drops it with the others)."""
        self.released.append(url)

    def drop_databases(self) -> None:
        """Every database made here and its role, in one psql process (a test run makes hundreds)."""
        if self.created:
            sql = "".join(
                f"DROP DATABASE IF EXISTS {n} WITH (FORCE);\nDROP ROLE IF EXISTS {n};\n" for n in self.created
            )
            _psql(sql, timeout=60 + len(self.created))
        self.created.clear()
        self.released.clear()
