"""Fixtures for the Ansible tests: one real deployment per session, and the services it configured."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgefleet.localservices.process import start_process, stop_process, tcp_answers, wait_until
from tests.integration.ansible.deployment import AGENTS, CENTRAL, Deployment, prepare
from tests.integration.ansible.wheelhouse import Wheels, build_wheels

# The deployment's setup (two playbook runs, three venvs) and a staged run of its own take minutes on a busy CI box.
ANSIBLE_TIMEOUT_S = 1200


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "network: needs the package index (skipped when it cannot be reached)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(ANSIBLE_TIMEOUT_S))


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wheels]:
    """The edgefleet wheel built from this tree, and the offline wheelhouses of the agent's and the central node's
    locks (cached between sessions: only a changed lock downloads again)."""
    folder = tmp_path_factory.mktemp("wheels")
    yield build_wheels(folder, ("agent", "dashboard"))  # the Pis install agent.txt, the central node dashboard.txt
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory, wheels: Wheels) -> Iterator[Deployment]:
    """``site.yml`` run twice against throw-away roots (the second run is the idempotence check).

    Session-scoped: one deployment for every module that only reads it or starts its services; a test that changes
    a host works on AGENTS[1] (never started) or on a deployment of its own. The roots (three venvs, ~300 MB) are
    removed at the end; the playbook logs (``ansible-run-N.log``) and service logs stay in pytest's temporary folder.
    """
    work = tmp_path_factory.mktemp("ansible")
    deployed = prepare(work, wheels)
    for _ in range(2):
        result = deployed.run()
        assert result.returncode == 0, f"ansible-playbook failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    yield deployed
    shutil.rmtree(work / "roots", ignore_errors=True)


@dataclass
class CentralServices:
    mqtt_host: str
    mqtt_port: int
    s3_endpoint: str
    log_dir: Path


SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


@pytest.fixture(scope="session")
def central_services(deployment: Deployment) -> Iterator[CentralServices]:
    """Mosquitto, SeaweedFS and the S3 proxy started from what the central role rendered: the broker's config file,
    the units' ExecStart, and the proxy socket's ListenStream (systemd-socket-activate plays systemd's part)."""
    logs = deployment.work / "service-logs"
    conf = deployment.path(CENTRAL, "/etc/mosquitto/conf.d/edgefleet.conf")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"  # /usr/sbin is not on every user's PATH
    weed_unit = "edgefleet-seaweedfs.service"
    weed_dir = Path(deployment.unit_settings(CENTRAL, weed_unit)["WorkingDirectory"])
    listen = deployment.unit_settings(CENTRAL, "edgefleet-s3-proxy.socket")["ListenStream"]
    proxy_argv = [SOCKET_ACTIVATE, "-l", listen, *deployment.exec_start(CENTRAL, "edgefleet-s3-proxy.service")]
    started = []
    try:
        started.append(broker := start_process([mosquitto, "-c", str(conf)], logs / "mosquitto.log"))
        started.append(
            weed := start_process(deployment.exec_start(CENTRAL, weed_unit), logs / "weed.log", cwd=weed_dir)
        )
        started.append(proxy := start_process(proxy_argv, logs / "s3-proxy.log"))
        wait_until(lambda: tcp_answers("127.0.0.1", deployment.ports["mqtt"]), 15, "mosquitto", broker)
        wait_until(lambda: tcp_answers("127.0.0.1", deployment.ports["s3"]), 15, "S3 proxy socket", proxy)
        admin = deployment.s3_client("admin")
        wait_until(lambda: admin.bucket_exists("recordings"), 90, "SeaweedFS bucket", weed, logs / "weed.log")
        endpoint = deployment.toml(CENTRAL, "/etc/edgefleet/controller.toml")["s3"]["endpoint"]
        yield CentralServices("127.0.0.1", deployment.ports["mqtt"], endpoint, logs)
    finally:
        for proc in reversed(started):
            stop_process(proc, timeout=15)


@dataclass
class Fleet:
    """The controller, the dashboard and one agent, each started from the unit the roles rendered."""

    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]]

    def log_tail(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-3000:]

    def all_logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log_tail(name)}" for name in self.logs)

    def check_alive(self, what: str) -> None:
        """Fail the test, with the logs, when a service of the fleet has exited."""
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            pytest.fail(f"{what}: exited {dead}:\n" + "\n".join(self.log_tail(name) for name in dead))


@pytest.fixture(scope="session")
def fleet(deployment: Deployment, central_services: CentralServices) -> Iterator[Fleet]:
    units = {
        "controller": (CENTRAL, "edgefleet-controller.service"),
        "dashboard": (CENTRAL, "edgefleet-dashboard.service"),
        "agent": (AGENTS[0], "edgefleet-agent.service"),
    }
    running = Fleet({}, {})
    try:
        for name, (host, unit) in units.items():
            log = central_services.log_dir / f"{name}.log"
            running.logs[name] = log
            running.processes[name] = start_process(deployment.exec_start(host, unit), log)
        yield running
    finally:
        for proc in running.processes.values():
            stop_process(proc)
