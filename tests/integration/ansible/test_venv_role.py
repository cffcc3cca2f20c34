"""The shared ``edgefleet_venv`` role alone, on the venv the deployment made: a rebuilt wheel of the same version.

pip keeps an installed ``edgefleet 0.1.0`` when handed another 0.1.0 wheel; the role notices that the wheel's
content changed (its install record holds the wheel's checksum) and forces it in without touching the
dependencies. That a repeat run skips pip is checked on the deployment's second run (test_playbook.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.integration.ansible.deployment import AGENTS, GROUP, USER, Deployment, base_python, run_local_play

pytestmark = pytest.mark.integration

PROBE = "ansible_rebuild_probe.txt"
VENV = "/opt/edgefleet/agent/venv"
HOST = AGENTS[1]  # never started by the tests, so its installation may change


def test_rebuilt_wheel_of_the_same_version_is_forced_in(
    deployment: Deployment, wheels: tuple[Path, Path], tmp_path: Path
) -> None:
    record_file = deployment.path(HOST, f"{VENV}/.edgefleet-install.json")
    before = json.loads(record_file.read_text())
    assert before["requirement"].endswith(f"{wheels[0].name}[agent]")

    rebuilt = tmp_path / "rebuilt" / wheels[0].name  # same file name and version, new content
    rebuilt.parent.mkdir()
    shutil.copy2(wheels[0], rebuilt)
    with zipfile.ZipFile(rebuilt, "a") as archive:
        archive.writestr(f"edgefleet/{PROBE}", "rebuilt\n")
    play = [
        {
            "name": "edgefleet_venv alone",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "roles": [
                {
                    "role": "edgefleet_venv",
                    # what the edge_agent role passes (tasks/main.yml), with the rebuilt wheel
                    "edgefleet_venv_root": str(deployment.root(HOST)),
                    "edgefleet_venv_path": VENV,
                    "edgefleet_venv_python": base_python(),
                    "edgefleet_venv_wheel_dir": "/opt/edgefleet/agent/wheels",
                    "edgefleet_venv_wheel": str(rebuilt),
                    "edgefleet_venv_extras": ["agent"],
                    "edgefleet_venv_pip_extra_args": ["--no-index", "--find-links", str(wheels[1]), "--no-compile"],
                    "edgefleet_venv_admin_user": USER,
                    "edgefleet_venv_admin_group": GROUP,
                }
            ],
        }
    ]
    result = run_local_play(play, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "changed: [localhost]" in result.stdout.split("Reinstall edgefleet from a changed wheel")[1][:200]
    after = json.loads(record_file.read_text())
    assert after["wheel_sha1"] != before["wheel_sha1"]
    python = deployment.path(HOST, f"{VENV}/bin/python")
    code = f"import edgefleet, pathlib; print((pathlib.Path(edgefleet.__file__).parent / '{PROBE}').read_text())"
    assert subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True).stdout == "rebuilt\n\n"
