"""The demo's data folder: one place for every service's data, config, log and the generated secrets.

``DemoState`` (ports, passwords, keys) is created once and stored in ``demo.json`` (mode 0600), so a second
run reuses the same URLs, logins and data; ``--fresh`` deletes the folder. The config builders are pure:
they turn the state and the addresses into the TOML documents of CONFIG.md.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgefleet.demo.tomlw import dumps

STATE_FILE = "demo.json"
DASHBOARD_USER = "admin"
SITES = ("garden", "meadow", "forest")


@dataclass
class DemoState:
    mqtt_controller_password: str
    dashboard_password: str
    dashboard_secret_key: str
    s3_access_key: str
    s3_secret_key: str
    dashboard_port: int = 0
    mqtt_port: int = 0
    s3_ports: dict[str, int] = field(default_factory=dict)
    agent_passwords: dict[str, str] = field(default_factory=dict)
    simulated_agent_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @classmethod
    def new(cls) -> DemoState:
        return cls(
            mqtt_controller_password=secrets.token_urlsafe(12),
            dashboard_password=secrets.token_urlsafe(9),
            dashboard_secret_key=secrets.token_urlsafe(32),
            s3_access_key="demo" + secrets.token_hex(4),
            s3_secret_key=secrets.token_urlsafe(24),
        )

    def agent_password(self, agent_id: str) -> str:
        return self.agent_passwords.setdefault(agent_id, secrets.token_urlsafe(12))

    @classmethod
    def load_or_create(cls, root: Path) -> DemoState:
        path = root / STATE_FILE
        if path.exists():
            data = json.loads(path.read_text())
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        return cls.new()

    def save(self, root: Path) -> None:
        path = root / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        path.chmod(0o600)


def agent_ids(count: int) -> list[str]:
    """``pi-garden-01``, ``pi-meadow-02``, ... spread over a few sites."""
    return [f"pi-{SITES[i % len(SITES)]}-{i + 1:02d}" for i in range(count)]


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

    def mqtt_url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@{self.mqtt_host}:{self.mqtt_port}"


def s3_table(state: DemoState, ends: Endpoints) -> dict[str, object]:
    return {
        "endpoint": ends.s3_endpoint,
        "access_key": state.s3_access_key,
        "secret_key": state.s3_secret_key,
        "bucket": ends.s3_bucket,
    }


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


def controller_settings(state: DemoState, ends: Endpoints, paths: Paths) -> dict[str, object]:
    return {
        "controller_id": "demo-controller",
        "database_url": paths.database_url,
        "tick_seconds": 1.0,
        "offline_after_s": 30,
        "mqtt": {"url": ends.mqtt_url("controller", state.mqtt_controller_password)},
        "s3": {**s3_table(state, ends), "stale_upload_hours": 24},
        # A small demo uplink, so the fair share and the hot agent's throttling are visible.
        "policy": {"site_uplink_bps": 12_500_000, "cool_hold_s": 20},
    }


def dashboard_settings(state: DemoState, paths: Paths, digest: str, host: str = "127.0.0.1") -> dict[str, object]:
    return {
        "database_url": paths.database_url,
        "host": host,
        "port": state.dashboard_port,
        "secret_key": state.dashboard_secret_key,
        "offline_after_s": 30,
        "users": [{"name": DASHBOARD_USER, "password_hash": digest, "role": "operator"}],
    }


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
        "s3": {**s3_table(state, ends), "prefix": "demo"},
        "defaults": {"concurrency": 2, "part_size": 5 * 1024 * 1024, "compression_level": 5},
    }


def write_toml(path: Path, settings: Mapping[str, object]) -> Path:
    """Write a config (mode 0600: it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(settings))
    path.chmod(0o600)
    return path
