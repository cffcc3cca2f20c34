"""docs/ansible.md, "A fleet of your own", followed literally in a copy of ``ansible/``: the commands work, the
pre-flight accepts fresh secrets and refuses the example's; the fingerprint list covers the example vault."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.ansible.deployment import ANSIBLE_DIR, EXAMPLE_VAULT, VAULT_PASSWORD_FILE, VENV_BIN
from tests.integration.ansible.wheelhouse import REPO

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "ansible.md"
REFUSED = "would be deployed with a secret of the public example vault"


def documented_commands() -> list[str]:
    """The shell block of the section, one command per line, comments removed."""
    section = DOC.read_text().split("## A fleet of your own", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def fresh_vault() -> dict[str, Any]:
    """Secrets as the documentation says to make them, for the example's hosts."""

    def token() -> str:
        return secrets.token_urlsafe(24)

    return {
        "vault_edgefleet_agents": {
            pi: {"mqtt_password": token(), "s3_access_key": token(), "s3_secret_key": token()}
            for pi in ("pi-garden-01", "pi-garden-02")
        },
        **{
            f"vault_edgefleet_{name}": token()
            for name in (
                "controller_mqtt_password",
                "controller_mqtt_telemetry_password",
                "controller_s3_access_key",
                "controller_s3_secret_key",
                "s3_admin_access_key",
                "s3_admin_secret_key",
                "dashboard_secret_key",
                "postgres_password",
            )
        },
        "vault_edgefleet_dashboard_users": [
            {"name": "admin", "password_hash": "$2b$12$" + "x" * 53, "role": "operator"}  # never the example's
        ],
    }


def _view_example_vault() -> dict[str, Any]:
    out = subprocess.run(
        [
            str(VENV_BIN / "ansible-vault"),
            "view",
            "--vault-password-file",
            str(VAULT_PASSWORD_FILE),
            str(EXAMPLE_VAULT),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return dict(yaml.safe_load(out))


def _run(commands: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = "set -eu\n" + "\n".join(commands) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_documented_commands_make_a_fleet_the_preflight_accepts(tmp_path: Path) -> None:
    top = tmp_path / "checkout"  # the repository's top folder, as far as these commands are concerned
    shutil.copytree(ANSIBLE_DIR, top / "ansible", ignore=shutil.ignore_patterns(".cache", "pki", "prod"))
    password = tmp_path / "my-vault-password"
    password.write_text(secrets.token_urlsafe(24))
    source = tmp_path / "my-secrets.yml"
    source.write_text(yaml.safe_dump(fresh_vault()))
    editor = tmp_path / "editor"
    editor.write_text(f'#!/bin/sh\ncp "{source}" "$1"\n')  # what an operator types into ansible-vault's editor
    editor.chmod(0o700)
    env = {
        **os.environ,
        "EDITOR": str(editor),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    env.pop("ANSIBLE_CONFIG", None)  # `cd ansible` picks up ansible/ansible.cfg, as for the operator
    commands = []
    for command in documented_commands():
        if command.startswith("$EDITOR"):
            continue  # the example's hosts stay: nothing is deployed here, only the pre-flight runs
        # the operator's terminal: a password file, and an editor without a tty
        vault_args = f"--vault-password-file {password} --skip-tty-check"
        command = command.replace("ansible-vault create", f"ansible-vault create {vault_args}")
        command = command.replace("--ask-vault-pass", f"--vault-password-file {password} --tags preflight")
        commands.append(command)
    assert any("ansible-vault create" in c for c in commands)
    assert any("ansible-playbook" in c and "--tags preflight" in c for c in commands)

    accepted = _run(commands, top, env)
    assert accepted.returncode == 0, accepted.stdout[-4000:] + accepted.stderr[-2000:]
    prod = top / "ansible" / "inventory" / "prod"
    vault = prod / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")
    assert not (prod / "vault.example.yml").exists()
    assert "ok=1" in accepted.stdout
    assert REFUSED not in accepted.stdout

    # The same inventory with the example's secrets pasted into the vault is refused.
    source.write_text(yaml.safe_dump(_view_example_vault()))
    vault.unlink()
    again = [c for c in commands if "ansible-vault create" in c or "ansible-playbook" in c]
    refused = _run(again, top, env)
    assert refused.returncode != 0
    assert REFUSED in refused.stdout


def test_every_example_secret_has_its_fingerprint() -> None:
    example = _view_example_vault()
    listed = set(
        yaml.safe_load((ANSIBLE_DIR / "vars" / "example_secrets.yml").read_text())["edgefleet_example_secret_sha256"]
    )

    def strings(value: object, key: str = "") -> list[str]:
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in strings(v, k)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v, key)]
        return [value] if isinstance(value, str) and key not in ("name", "role") else []

    found = strings(example)
    assert len(found) == 15  # 3 per agent, 8 single secrets, 1 dashboard user hash
    missing = [s[:4] + "..." for s in found if hashlib.sha256(s.encode()).hexdigest() not in listed]
    assert missing == []
    for public in ("example-admin-password", VAULT_PASSWORD_FILE.read_text().strip()):
        assert hashlib.sha256(public.encode()).hexdigest() in listed
