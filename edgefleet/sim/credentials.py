"""Per-agent logins of a simulated fleet, read from a private TOML file (``edgefleet simulate --credentials``).

One table per agent id, every key optional::

    [agents."pi-01-pi4-4g"]
    site = "garden"                # the site its birth reports (the controller's own agent_sites table rules)
    mqtt_password = "..."          # logs in to the broker as its own id (user = agent id)
    s3_access_key = "..."          # its own S3 identity (allowed only under {prefix}/{agent id}/)
    s3_secret_key = "..."

The file must be readable by its owner only (mode 0600 or stricter): secrets never go on a command line, where
every local user can read them (``ps``), and never into a file others can read.
"""

from __future__ import annotations

import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

_KEYS = {"site", "mqtt_password", "s3_access_key", "s3_secret_key"}


class CredentialsError(ValueError):
    """The credentials file is unsafe or malformed; the message says what and where."""


@dataclass(frozen=True)
class AgentCredentials:
    site: str = ""
    mqtt_password: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""


def check_private(path: Path) -> None:
    """Refuse a secrets file that its group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(f"{path} is readable by others (mode {stat.filemode(mode)}): chmod 600 {path}")


def load_credentials(path: Path) -> dict[str, AgentCredentials]:
    try:
        check_private(path)
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"agents"}
    agents = data.get("agents", {})
    if unknown or not isinstance(agents, dict):
        raise CredentialsError(f'{path}: only [agents."<id>"] tables are allowed, found {sorted(unknown) or agents!r}')
    out: dict[str, AgentCredentials] = {}
    for agent_id, table in agents.items():
        if not isinstance(table, dict):
            raise CredentialsError(f"{path}: agents.{agent_id} must be a table")
        bad = sorted(set(table) - _KEYS)
        if bad:
            raise CredentialsError(f"{path}: agents.{agent_id}: unknown key(s) {bad} (known: {sorted(_KEYS)})")
        if not all(isinstance(v, str) for v in table.values()):
            raise CredentialsError(f"{path}: agents.{agent_id}: every value must be a string")
        if bool(table.get("s3_access_key")) != bool(table.get("s3_secret_key")):
            raise CredentialsError(f"{path}: agents.{agent_id}: s3_access_key and s3_secret_key go together")
        out[agent_id] = AgentCredentials(**table)
    return out
