"""``edgefleet demo``: the whole system on one machine, under one data folder, until Ctrl-C.

Starts a real Mosquitto broker and a real S3 server (SeaweedFS), then the controller, the dashboard and a
simulated fleet (``edgefleet simulate``), each as a child process in its own process group with a generated
TOML config. As in production, every agent has its own broker user and S3 identity (its own topics and
objects only) and the controller its own; no secret is on a command line. Everything lives under ``--dir``
(default ``.demo/``): configs, databases, spools, object data, logs and the generated secrets (``demo.json``),
so a second run reuses them; ``--fresh`` clears the folder first. Ctrl-C or SIGTERM stops every child group;
nothing is left running. ``edgefleet demo env`` prints the S3 settings of a running demo as a line to paste
into a shell, for trying ``upload``, ``verify`` and ``restore`` against it.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from edgefleet.demo import parts
from edgefleet.demo.layout import (
    DASHBOARD_MQTT,
    DASHBOARD_USER,
    OBJECT_PREFIX,
    DemoState,
    Endpoints,
    Paths,
    controller_settings,
    credentials_document,
    s3_exports,
    sites_of,
    write_toml,
)
from edgefleet.demo.provision import provision
from edgefleet.demo.supervisor import Supervisor, start_controller, start_dashboard, stop_leftovers
from edgefleet.localservices import Mosquitto, SeaweedS3, ServiceError
from edgefleet.localservices.process import free_port

DEFAULT_DIR = Path(".demo")
SIM_PREFIX = "pi"


def simulated_ids(count: int) -> list[str]:
    """The ids ``edgefleet simulate`` will use (their broker users are created before it starts)."""
    from edgefleet.sim.fleet import agent_ids as sim_agent_ids

    return sim_agent_ids(count, SIM_PREFIX)


READY_LINE = "edgefleet demo: ready"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("run", "env"),
        default="run",
        help="run: start the demo (the default); env: print its S3 settings as an export line for a shell",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="data folder, reused by the next run (.demo)")
    parser.add_argument("--fresh", action="store_true", help="clear the data folder first")
    parser.add_argument("--agents", type=int, default=6, help="simulated agents (6)")
    parser.add_argument("--record-every", type=float, default=40.0, help="seconds between recordings per agent")


def say(text: str) -> None:
    print(text, flush=True)


def print_env(root: Path) -> int:
    """``edgefleet demo env``: the export line of the demo in ``root`` (its secrets are in demo.json)."""
    if not (root / "demo.json").exists():
        print(f"edgefleet demo env: no demo in {root} (start one with 'edgefleet demo --dir {root}')", file=sys.stderr)
        return 1
    state = DemoState.load_or_create(root)
    if not state.s3_ports.get("s3"):
        print(f"edgefleet demo env: the demo in {root} has not started its S3 server yet", file=sys.stderr)
        return 1
    print(s3_exports(state))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "env":
        return print_env(args.dir.resolve())
    if args.agents < 1:
        print("edgefleet demo: --agents must be >= 1", file=sys.stderr)
        return 2
    root: Path = args.dir.resolve()
    if root.exists():
        stopped = stop_leftovers(root)
        if stopped:
            say(f"stopped {len(stopped)} process group(s) left over by a previous demo")
        if args.fresh:
            shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # minio retries while the S3 server starts
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return Demo(root, args.agents, args.record_every, stop).run()
    except ServiceError as exc:
        print(f"edgefleet demo: {exc}", file=sys.stderr)
        return 1


class Demo:
    def __init__(self, root: Path, agents: int, record_every: float, stop: threading.Event) -> None:
        self.paths = Paths(root)
        self.state = DemoState.load_or_create(root)
        self.agent_ids = simulated_ids(agents)
        self.sites = sites_of(self.agent_ids)
        self.record_every = record_every
        self.stop = stop
        self.supervisor = Supervisor(root)
        self.failed: list[str] = []
        self.notes: list[str] = []
        self.started = time.monotonic()

    def run(self) -> int:
        root, state = self.paths.root, self.state
        for folder in (self.paths.configs, self.paths.logs, self.paths.database.parent, root / "mosquitto"):
            folder.mkdir(parents=True, exist_ok=True)
        broker = Mosquitto(directory=root / "mosquitto", port=parts.reuse_port(state.mqtt_port, free_port()))
        s3 = SeaweedS3(directory=root / "s3", access_key=state.s3_access_key, secret_key=state.s3_secret_key)
        provision(state, broker, s3, self.agent_ids)
        if parts.ports_free(state.s3_ports.values(), grpc_offset=10000):
            s3.ports = dict(state.s3_ports)
        state.mqtt_port, state.s3_ports = broker.port, dict(s3.ports)
        state.dashboard_port = parts.reuse_port(state.dashboard_port, free_port())
        state.save(root)
        ends = Endpoints(broker.host, broker.port, s3.endpoint, s3.bucket)
        try:
            with broker, s3:
                for runner in (broker, s3):
                    self.supervisor.adopt(_pid(runner))
                try:
                    if not self.stop.is_set():
                        self._start_parts(ends)
                    if not self.stop.is_set():
                        self._announce(broker, s3)
                        self._watch()
                finally:  # the fleet, dashboard and controller first, while broker and S3 still run
                    self.supervisor.stop_all()
        finally:
            self.supervisor.stop_all()
        say("edgefleet demo: stopped, no process left running")
        return 0

    # -- parts -------------------------------------------------------------------------------------------
    def _start_parts(self, ends: Endpoints) -> None:
        # the controller takes each agent's site from its own config, not from the agent's birth
        settings = controller_settings(self.state, ends, self.paths, self.sites)
        conf = write_toml(self.paths.configs / "controller.toml", settings)
        start_controller(self.supervisor, conf)
        try:
            mqtt_url = ends.mqtt_url(DASHBOARD_MQTT, self.state.agent_password(DASHBOARD_MQTT))
            start_dashboard(self.supervisor, self.state, self.paths, mqtt_url=mqtt_url)
        except ServiceError as exc:
            self.failed.append(f"dashboard: {exc}")
        self._start_fleet(ends)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.state.dashboard_port}/"

    def _start_fleet(self, ends: Endpoints) -> None:
        """``edgefleet simulate``: hardware profiles, a thermal model (the first agent sits in a hot enclosure)
        and real uploads of generated recordings. Each simulated agent logs in with its own broker password and
        S3 identity, read from a credentials file (mode 0600): no secret on the command line or in the
        environment."""
        credentials = write_toml(
            self.paths.configs / "fleet-credentials.toml", credentials_document(self.state, self.sites)
        )
        argv = [
            *("--agents", str(len(self.agent_ids)), "--hot", "1", "--upload", "--id-prefix", SIM_PREFIX),
            *("--dir", str(self.paths.root / "fleet"), "--prefix", OBJECT_PREFIX),
            *("--telemetry-interval", "2", "--record-every", f"{self.record_every:g}"),
            *("--mqtt-url", ends.mqtt_url(), "--credentials", str(credentials)),
        ]
        env = {"EDGEFLEET_S3_ENDPOINT": ends.s3_endpoint, "EDGEFLEET_S3_BUCKET": ends.s3_bucket}
        self.supervisor.start("simulate", parts.SIMULATE.argv(*argv), env=env)
        self.notes.append(f"simulated fleet: {self.agent_ids[0]} sits in a hot enclosure")

    # -- running -----------------------------------------------------------------------------------------
    def _announce(self, broker: Mosquitto, s3: SeaweedS3) -> None:
        lines = [
            f"data folder  : {self.paths.root}  (logs in {self.paths.logs}, secrets in demo.json)",
            f"MQTT broker  : mqtt://{broker.host}:{broker.port}",
            f"S3 endpoint  : {s3.endpoint}  bucket={s3.bucket}  admin access key={s3.access_key}",
            "logins       : one broker user and one S3 identity per agent and for the controller (demo.json)",
        ]
        if not self.failed:
            login = f"login {DASHBOARD_USER} / {self.state.dashboard_password}"
            lines.append(f"dashboard    : {self.dashboard_url}  {login}")
        lines += [f"agents       : {', '.join(self.agent_ids)}", *(f"note         : {n}" for n in self.notes)]
        lines += [f"FAILED       : {f}" for f in self.failed]
        for line in lines:
            say(line)
        say("try the CLI : paste this line into another shell (or run 'edgefleet demo env'), then 'edgefleet upload'")
        say(f"  {s3_exports(self.state, bucket=s3.bucket)}")
        say(f"{READY_LINE} in {time.monotonic() - self.started:.1f} s. Ctrl-C stops everything.")

    def _watch(self) -> None:
        while not self.stop.wait(1.0):
            for child in self.supervisor.dead():
                code = child.proc.returncode if child.proc else "?"
                say(f"warning: {child.name} exited with code {code}; see {child.log}")


def _pid(runner: Mosquitto | SeaweedS3) -> int | None:
    proc = getattr(runner, "_proc", None)  # the runners do not expose the pid; recorded for leftover cleanup only
    return int(proc.pid) if proc is not None else None


__all__ = ["READY_LINE", "configure", "run"]
