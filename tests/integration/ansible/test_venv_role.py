"""The shared ``edgefleet_venv`` role alone, on an agent the deployment installed: releases and rollback, offline
from the wheelhouse and online from the index.

Each release is a venv of its own under ``releases/`` and the service path is a symlink to the current one. A
rebuilt wheel of the same version is a new release (its checksum is part of the release's name); a rollback
switches the symlink back to the previous release without pip. That a repeat run skips pip is checked on the
deployment's second run (test_playbook.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fleet_base import __version__
from tests.integration.ansible.deployment import (
    AGENTS,
    GROUP,
    USER,
    Deployment,
    base_python,
    host_python,
    run_local_play,
)
from tests.integration.ansible.wheelhouse import LOCKS, Wheels, index_reachable

pytestmark = pytest.mark.integration

PROBE = "ansible_rebuild_probe.txt"
INSTALL_DIR = "/opt/edgefleet/agent"
VENV = f"{INSTALL_DIR}/venv"
HOST = AGENTS[1]  # never started by the tests, so its installation may change


def _play(root: Path, **settings: Any) -> list[dict[str, Any]]:
    """The edgefleet_venv role as the edge_agent role calls it (tasks/main.yml), with ``settings`` on top."""
    role = {
        "role": "edgefleet_venv",
        "edgefleet_venv_root": str(root),
        "edgefleet_venv_path": VENV,
        "edgefleet_venv_python": base_python(),
        "edgefleet_venv_wheel_dir": f"{INSTALL_DIR}/wheels",
        "edgefleet_venv_extras": ["agent"],
        "edgefleet_venv_pip_extra_args": ["--no-compile"],
        "edgefleet_venv_admin_user": USER,
        "edgefleet_venv_admin_group": GROUP,
        **settings,
    }
    return [{"name": "edgefleet_venv alone", "hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": host_python()}, "roles": [role]}]  # fmt: skip


def _probe(root: Path) -> str:
    python = root / VENV.lstrip("/") / "bin" / "python"
    code = f"import edgefleet, pathlib; p = pathlib.Path(edgefleet.__file__).parent / '{PROBE}'; print(p.exists())"
    return subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _rebuilt(wheel: Path, folder: Path) -> Path:
    """The same wheel (same file name and version) with one more file in it."""
    rebuilt = folder / wheel.name
    folder.mkdir()
    shutil.copy2(wheel, rebuilt)
    with zipfile.ZipFile(rebuilt, "a") as archive:
        archive.writestr(f"edgefleet/{PROBE}", "rebuilt\n")
    return rebuilt


def test_a_rebuilt_wheel_is_a_new_release_and_a_rollback_returns_to_the_old_one(
    deployment: Deployment, wheels: Wheels, tmp_path: Path
) -> None:
    root = deployment.root(HOST)
    link = root / VENV.lstrip("/")
    old_release = link.resolve()
    assert link.is_symlink()
    assert old_release.parent.name == "releases"
    assert json.loads((old_release / ".edgefleet-install.json").read_text())["version"] == __version__
    offline = {"edgefleet_venv_wheelhouse": str(wheels.archive("agent"))}

    rebuilt = _rebuilt(wheels.edgefleet, tmp_path / "rebuilt")
    result = run_local_play(_play(root, edgefleet_venv_wheel=str(rebuilt), **offline), tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    new_release = link.resolve()
    assert new_release != old_release
    assert new_release.name.startswith(f"{__version__}-")
    assert _probe(root) == "True"
    assert (root / INSTALL_DIR.lstrip("/") / "previous").resolve() == old_release

    back = run_local_play(_play(root, edgefleet_venv_rollback=True), tmp_path)
    assert back.returncode == 0, back.stdout[-4000:]
    assert "Install the locked dependencies" not in back.stdout  # a symlink switch, no pip
    assert link.resolve() == old_release
    assert _probe(root) == "False"
    assert (root / INSTALL_DIR.lstrip("/") / "previous").resolve() == new_release  # a second rollback undoes it


def test_a_rollback_without_a_previous_release_changes_nothing(wheels: Wheels, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = run_local_play(_play(root, edgefleet_venv_rollback=True), tmp_path)
    assert result.returncode != 0
    assert "no previous release to roll back to" in result.stdout
    assert not (root / VENV.lstrip("/")).exists()


@pytest.mark.network
@pytest.mark.skipif(not index_reachable(), reason="the package index is not reachable")
def test_online_install_from_the_index_checks_every_hash(wheels: Wheels, tmp_path: Path) -> None:
    """No wheelhouse: the agent's lock comes from the index with --require-hashes (pyflac built from its sdist)."""
    root = tmp_path / "root"
    play = _play(root, edgefleet_venv_wheel=str(wheels.edgefleet), edgefleet_venv_lock=str(LOCKS / "agent.txt"))
    result = run_local_play(play, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "--no-index" not in json.dumps(json.loads((root / VENV.lstrip("/") / ".edgefleet-install.json").read_text()))
    python = root / VENV.lstrip("/") / "bin" / "python"
    code = "import pyflac, numpy, paho.mqtt, edge_agent.service.config; print('ok')"
    assert subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True).stdout == "ok\n"
