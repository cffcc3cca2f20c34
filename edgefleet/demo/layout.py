"""The demo's data folder: one place for every service's data, config, log and the generated secrets.

``DemoState`` (ports, passwords, keys) is created once and stored in ``demo.json`` (mode 0600), so a second
run reuses the same URLs, logins and data; ``--fresh`` deletes the folder. Every agent has its own broker
password and its own S3 key pair; the controller has its own of both. Secrets are letters and digits only, so
they never start with '-' and need no quoting in a URL or a shell. The config builders are pure: they turn
the state and the addresses into the TOML documents of the services.
"""

from __future__ import annotations

import json
import secrets
import shlex
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgefleet.demo.tomlw import dumps
from fleet_protocol.assignment import MIN_PART_SIZE

STATE_FILE = "demo.json"
DASHBOARD_USER = "admin"
SITES = ("garden", "meadow", "forest")
#: the S3 identity and broker user of the controller
CONTROLLER = "controller"
#: the broker user of the controller's central monitor (reads $SYS) and the S3 identity of its probe
CENTRAL_MONITOR = "central-monitor"
CENTRAL_PROBE = "central-probe"
#: the S3 identity of the controller's recordings catalog (reads objects)
CATALOG = "catalog"
#: the dashboard's broker user (role dashboard: queue control)
DASHBOARD_MQTT = "dashboard"
#: the demo's objects are {OBJECT_PREFIX}/{agent id}/...
OBJECT_PREFIX = "demo"
_ALPHABET = string.ascii_letters + string.digits


def secret(length: int = 20) -> str:
    """A random secret of letters and digits (URL-, TOML- and command-line-safe; never starts with '-')."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class DemoState:
    mqtt_controller_password: str
    dashboard_password: str
    dashboard_secret_key: str
    s3_access_key: str  # the S3 admin (the demo itself and the operator; no service uses it)
    s3_secret_key: str
    dashboard_port: int = 0
    mqtt_port: int = 0
    s3_ports: dict[str, int] = field(default_factory=dict)
    agent_passwords: dict[str, str] = field(default_factory=dict)
    s3_keys: dict[str, list[str]] = field(default_factory=dict)  # identity (agent id, "controller") -> key pair

    @classmethod
    def new(cls) -> DemoState:
        return cls(
            mqtt_controller_password=secret(),
            dashboard_password=secret(12),
            dashboard_secret_key=secret(40),
            s3_access_key="demo" + secrets.token_hex(4),
            s3_secret_key=secret(32),
        )

    def agent_password(self, agent_id: str) -> str:
        return self.agent_passwords.setdefault(agent_id, secret())

    def s3_key(self, identity: str) -> tuple[str, str]:
        """The (access key, secret key) of an agent's or the controller's own S3 identity."""
        access, secret_key = self.s3_keys.setdefault(identity, ["ak" + secrets.token_hex(8), secret(32)])
        return access, secret_key

    @classmethod
    def load_or_create(cls, root: Path) -> DemoState:
        path = root / STATE_FILE
        if path.exists():
            data = json.loads(path.read_text())
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)._renew_unsafe()
        return cls.new()

    def _renew_unsafe(self) -> DemoState:
        """Passwords of older demo folders could start with '-' (read as an option on a command line)."""
        fresh = DemoState.new()
        for name in ("mqtt_controller_password", "dashboard_password", "dashboard_secret_key", "s3_secret_key"):
            if getattr(self, name).startswith("-"):
                setattr(self, name, getattr(fresh, name))
        self.agent_passwords = {a: p for a, p in self.agent_passwords.items() if not p.startswith("-")}
        return self

    def save(self, root: Path) -> None:
        path = root / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        path.chmod(0o600)


def s3_exports(state: DemoState, host: str = "127.0.0.1", bucket: str = "recordings") -> str:
    """One shell line that points ``edgefleet upload/restore/verify`` at the demo's S3 server, as its operator
    (the admin identity: reads every agent's objects; no service of the demo uses it)."""
    values = {
        "EDGEFLEET_S3_ENDPOINT": f"http://{host}:{state.s3_ports.get('s3', 0)}",
        "EDGEFLEET_S3_ACCESS_KEY": state.s3_access_key,
        "EDGEFLEET_S3_SECRET_KEY": state.s3_secret_key,
        "EDGEFLEET_S3_BUCKET": bucket,
    }
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def sites_of(ids: list[str]) -> dict[str, str]:
    """Each agent's site, round robin over ``SITES``."""
    return {agent_id: SITES[i % len(SITES)] for i, agent_id in enumerate(ids)}


def credentials_document(state: DemoState, sites: Mapping[str, str]) -> dict[str, object]:
    """The ``edgefleet simulate --credentials`` file: every agent's own password, S3 key pair and site."""
    agents: dict[str, object] = {}
    for agent_id, site in sites.items():
        access_key, secret_key = state.s3_key(agent_id)
        agents[agent_id] = {
            "site": site,
            "mqtt_password": state.agent_password(agent_id),
            "s3_access_key": access_key,
            "s3_secret_key": secret_key,
        }
    return {"agents": agents}


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "controller" / "controller.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def configs(self) -> Path:
        return self.root / "config"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def agent_dir(self, agent_id: str) -> Path:
        return self.root / "agents" / agent_id


@dataclass(frozen=True)
class Endpoints:
    mqtt_host: str
    mqtt_port: int
    s3_endpoint: str
    s3_bucket: str

    def mqtt_url(self, user: str | None = None, password: str | None = None) -> str:
        """The broker's URL, with a login when ``user`` is given (secrets are URL-safe: see :func:`secret`)."""
        auth = f"{user}:{password}@" if user else ""
        return f"mqtt://{auth}{self.mqtt_host}:{self.mqtt_port}"


def s3_table(state: DemoState, ends: Endpoints, identity: str) -> dict[str, object]:
    """The ``[s3]`` table of a service that logs in as its own ``identity`` (an agent id or "controller")."""
    access_key, secret_key = state.s3_key(identity)
    return {"endpoint": ends.s3_endpoint, "access_key": access_key, "secret_key": secret_key, "bucket": ends.s3_bucket}


def merged(base: Mapping[str, object], changes: Mapping[str, object]) -> dict[str, object]:
    """``base`` with ``changes`` applied; tables are merged key by key (used by the e2e tests' variations)."""
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merged(old, value)
        else:
            out[key] = value
    return out


def controller_settings(
    state: DemoState, ends: Endpoints, paths: Paths, agent_sites: Mapping[str, str] | None = None
) -> dict[str, object]:
    """``agent_sites``: agent id -> site, the provisioned sites the controller trusts (not the agents' births)."""
    settings: dict[str, object] = {
        "controller_id": "demo-controller",
        "database_url": paths.database_url,
        "tick_seconds": 1.0,
        "offline_after_s": 30,
        "mqtt": {"url": ends.mqtt_url(CONTROLLER, state.mqtt_controller_password)},
        "s3": {**s3_table(state, ends, CONTROLLER), "stale_upload_hours": 24},
        "central": {
            "mqtt_url": ends.mqtt_url(CENTRAL_MONITOR, state.agent_password(CENTRAL_MONITOR)),
            "s3_probe": dict(zip(("access_key", "secret_key"), state.s3_key(CENTRAL_PROBE), strict=True)),
        },
        "catalog": dict(zip(("access_key", "secret_key"), state.s3_key(CATALOG), strict=True)),
        # A small demo uplink, so the fair share and the hot agent's throttling are visible.
        "policy": {"site_uplink_bps": 12_500_000, "cool_hold_s": 20},
    }
    if agent_sites is not None:
        settings["agent_sites"] = dict(agent_sites)
    return settings


def dashboard_settings(
    state: DemoState, paths: Paths, digest: str, host: str = "127.0.0.1", mqtt_url: str | None = None
) -> dict[str, object]:
    """``mqtt_url``: the dashboard's own broker login, for queue control (none: no ``[mqtt]``)."""
    settings: dict[str, object] = {
        "database_url": paths.database_url,
        "host": host,
        "port": state.dashboard_port,
        "secret_key": state.dashboard_secret_key,
        "offline_after_s": 30,
        "users": [{"name": DASHBOARD_USER, "password_hash": digest, "role": "operator"}],
    }
    if mqtt_url is not None:
        settings["mqtt"] = {"url": mqtt_url}
    controller = paths.configs / "controller.toml"
    if controller.exists():  # the policy's limits and budgets, as the controller reads them
        settings["controller_config"] = str(controller)
    return settings


def agent_settings(state: DemoState, ends: Endpoints, paths: Paths, agent_id: str, site: str) -> dict[str, object]:
    home = paths.agent_dir(agent_id)
    return {
        "agent_id": agent_id,
        "site": site,
        "spool_dir": str(home / "spool"),
        "state_dir": str(home / "state"),
        "retention": "delete",
        "min_free_bytes": 256 * 1024 * 1024,
        "settle_seconds": 2,
        "telemetry_interval_s": 2,
        "mqtt": {"url": ends.mqtt_url(agent_id, state.agent_password(agent_id))},
        "s3": {**s3_table(state, ends, agent_id), "prefix": OBJECT_PREFIX},
        "defaults": {"concurrency": 2, "part_size": MIN_PART_SIZE, "compression_level": 5},
    }


def write_toml(path: Path, settings: Mapping[str, object]) -> Path:
    """Write a config (mode 0600: it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(settings))
    path.chmod(0o600)
    return path
