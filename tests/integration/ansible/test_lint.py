"""``ansible-lint`` (production profile, set in ansible/.ansible-lint) and ``--syntax-check`` pass."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.ansible.deployment import ANSIBLE_DIR, EXAMPLE_INVENTORY, VAULT_PASSWORD_FILE, VENV_BIN

pytestmark = pytest.mark.integration


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "NO_COLOR": "1"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(argv, cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=300)


def test_syntax_check() -> None:
    result = _run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(EXAMPLE_INVENTORY / "hosts.yml"),
            "--vault-password-file",
            str(VAULT_PASSWORD_FILE),
            "--syntax-check",
            "site.yml",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile() -> None:
    result = _run([str(VENV_BIN / "ansible-lint"), "--offline", "--profile", "production"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in (result.stdout + result.stderr).lower()
