"""The shared ``edgefleet_venv`` role alone: its install record, and a same-version rebuilt wheel is forced in.

(That a repeat run skips pip is checked on the full deployment's second run, in test_playbook.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ansible.deployment import GROUP, USER, base_python, recap, run_local_play

pytestmark = pytest.mark.integration

PROBE = "ansible_rebuild_probe.txt"


def _play(root: Path, wheel: Path, wheelhouse: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "edgefleet_venv alone",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "roles": [
                {
                    "role": "edgefleet_venv",
                    "edgefleet_venv_root": str(root),
                    "edgefleet_venv_python": base_python(),
                    "edgefleet_venv_wheel": str(wheel),
                    "edgefleet_venv_extras": [],  # the base install only: quick
                    "edgefleet_venv_pip_extra_args": ["--no-index", "--find-links", str(wheelhouse), "--no-compile"],
                    "edgefleet_venv_admin_user": USER,
                    "edgefleet_venv_admin_group": GROUP,
                }
            ],
        }
    ]


def test_install_record_is_kept_and_a_rebuilt_wheel_is_forced_in(tmp_path: Path, wheels: tuple[Path, Path]) -> None:
    wheel = tmp_path / wheels[0].name
    shutil.copy2(wheels[0], wheel)  # a private copy: this test rewrites it
    root = tmp_path / "root"
    play = _play(root, wheel, wheels[1])
    venv = root / "opt/edgefleet/venv"

    first = run_local_play(play, tmp_path)
    assert first.returncode == 0, first.stdout[-4000:]
    record = json.loads((venv / ".edgefleet-install.json").read_text())
    assert record["requirement"].endswith(wheel.name)
    assert recap(first)["localhost"]["changed"] >= 3  # venv, wheel copy, pip, record

    with zipfile.ZipFile(wheel, "a") as archive:  # same name and version, new content
        archive.writestr(f"edgefleet/{PROBE}", "rebuilt\n")
    second = run_local_play(play, tmp_path)
    assert second.returncode == 0, second.stdout[-4000:]
    assert "changed: [localhost]" in second.stdout.split("Reinstall edgefleet from a changed wheel")[1][:200]
    python = venv / "bin/python"
    code = f"import edgefleet, pathlib; print((pathlib.Path(edgefleet.__file__).parent / '{PROBE}').read_text())"
    assert subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True).stdout == "rebuilt\n\n"
