"""Child processes of the demo: each in its own process group, logged to a file, stopped in reverse order.

The process group ids are also written to ``children.json`` in the data folder. If a previous demo was
killed hard (``kill -9`` of the demo itself leaves its children running), the next run stops those groups
first, but only groups whose leader's command line still names this data folder (no pid-reuse accidents).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet.demo.layout import DemoState, Paths, dashboard_settings, write_toml
from edgefleet.demo.parts import CONTROLLER, DASHBOARD, child_env, http_ok
from edgefleet.localservices import ServiceError
from edgefleet.localservices.process import start_process, stop_process, wait_until

log = logging.getLogger(__name__)
CHILDREN_FILE = "children.json"


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    root: Path
    children: list[Child] = field(default_factory=list)
    reported_dead: set[str] = field(default_factory=set)
    external: list[int] = field(default_factory=list)  # groups started by others (broker, S3), recorded only

    def adopt(self, pid: int | None) -> None:
        if pid:
            self.external.append(pid)
            self._record()

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, self.root / "logs" / f"{name}.log")
        full_env = {"PYTHONUNBUFFERED": "1", **child_env(), **(env or {})}
        child.proc = start_process(argv, child.log, cwd=self.root, env=full_env)
        self.children.append(child)
        self._record()
        return child

    def restart(self, name: str, hard: bool = False, downtime: float = 0.0) -> Child:
        """Stop the newest child called ``name`` (SIGKILL to its group when ``hard``), start it again."""
        old = next(c for c in reversed(self.children) if c.name == name)
        stop_process(old.proc, timeout=15.0, hard=hard)
        self.children.remove(old)
        time.sleep(downtime)
        return self.start(name, old.argv)

    def kill(self, name: str) -> None:
        """``kill -9`` the newest child called ``name`` and its whole group (it stays dead)."""
        child = next(c for c in reversed(self.children) if c.name == name)
        stop_process(child.proc, hard=True)

    def dead(self) -> list[Child]:
        """Children that exited on their own since the last call (each reported once)."""
        gone = [c for c in self.children if not c.alive and c.name not in self.reported_dead]
        self.reported_dead.update(c.name for c in gone)
        return gone

    def stop_all(self, timeout: float = 15.0) -> None:
        """Newest first: the fleet, then the dashboard and the controller (broker and S3 are stopped by their
        own runners). SIGTERM to every group at once, then SIGKILL whatever is left after ``timeout``."""
        for child in reversed(self.children):
            if child.alive and child.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(max(0.1, deadline - time.monotonic()))
                stop_process(child.proc, timeout=1.0, hard=True)
                # the group may hold more than the leader (e.g. a worker that ignored SIGTERM)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
        self.children.clear()
        self.external.clear()
        self._record()

    def _record(self) -> None:
        groups = [c.proc.pid for c in self.children if c.proc is not None] + self.external
        (self.root / CHILDREN_FILE).write_text(json.dumps(groups))


def start_controller(supervisor: Supervisor, conf: Path) -> None:
    """``edgefleet controller --migrate`` (the database at this release's schema, as an operator upgrades it),
    then the controller; the dashboard refuses a database the migrations have not brought up to date."""
    migrate = subprocess.run(
        CONTROLLER.argv("--config", str(conf), "--migrate"),
        cwd=supervisor.root,
        env={**os.environ, **child_env()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if migrate.returncode != 0:
        raise ServiceError(f"controller --migrate failed: {migrate.stderr.strip()[-2000:]}")
    supervisor.start("controller", CONTROLLER.argv("--config", str(conf)))


def start_dashboard(
    supervisor: Supervisor, state: DemoState, paths: Paths, bcrypt_rounds: int = 10, mqtt_url: str | None = None
) -> str:
    """Write dashboard.toml (one operator with ``state.dashboard_password``; ``mqtt_url``: its broker login for
    queue control), start it, wait until it answers; returns its URL."""
    import bcrypt

    digest = bcrypt.hashpw(state.dashboard_password.encode(), bcrypt.gensalt(rounds=bcrypt_rounds)).decode()
    conf = write_toml(paths.configs / "dashboard.toml", dashboard_settings(state, paths, digest, mqtt_url=mqtt_url))
    child = supervisor.start("dashboard", DASHBOARD.argv("--config", str(conf)))
    url = f"http://127.0.0.1:{state.dashboard_port}/"
    wait_until(lambda: http_ok(f"{url}login"), 60, "the dashboard", child.proc, child.log)
    return url


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_leftovers(root: Path) -> list[int]:
    """Stop the process groups a previous, hard-killed demo left behind in ``root``; returns them."""
    path = root / CHILDREN_FILE
    try:
        groups = [int(g) for g in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    stopped = []
    for pgid in groups:
        if str(root) in _cmdline(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                stopped.append(pgid)
    path.unlink(missing_ok=True)
    return stopped
