"""The MinIO task list without a MinIO server (none on these machines): settings, unit and per-agent policies.

``central_minio_configure_users: false`` skips the ``mc`` calls, which need a running MinIO.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.integration.ansible.deployment import GROUP, USER, run_local_play

pytestmark = pytest.mark.integration

AGENTS = [
    {"id": "pi-a", "s3_access_key": "AKA", "s3_secret_key": "secret-a"},
    {"id": "pi-b", "s3_access_key": "AKB", "s3_secret_key": "secret-b"},
]


def test_minio_settings_unit_and_one_policy_per_agent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    play = [
        {
            "name": "MinIO tasks of the central role",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": "Folders the role's main task list would have made",
                    "ansible.builtin.file": {"path": f"{root}/{{{{ item }}}}", "state": "directory", "mode": "0755"},
                    "loop": ["etc/default", "etc/edgefleet", "etc/systemd/system", "var/lib/edgefleet"],
                },
                {
                    "name": "Run them",
                    "ansible.builtin.include_role": {"name": "central", "tasks_from": "minio.yml"},
                    "vars": {
                        "edgefleet_root": str(root),
                        "central_object_store": "minio",
                        "central_manage_services": False,
                        "central_manage_user": False,
                        "central_minio_configure_users": False,
                        "central_minio_user": USER,
                        "central_minio_group": GROUP,
                        "central_admin_user": USER,
                        "central_admin_group": GROUP,
                        "central_agents": AGENTS,
                        "central_s3_admin_access_key": "root-user",
                        "central_s3_admin_secret_key": "root-secret",
                    },
                },
            ],
        }
    ]
    first = run_local_play(play, tmp_path)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]

    env = (root / "etc/default/minio").read_text()
    assert 'MINIO_ROOT_USER="root-user"' in env
    assert f'MINIO_VOLUMES="{root}/var/lib/edgefleet/minio"' in env
    unit = (root / "etc/systemd/system/minio.service").read_text()
    assert f"EnvironmentFile={root}/etc/default/minio" in unit
    for agent in AGENTS:
        policy = json.loads((root / f"etc/edgefleet/minio-policies/agent-{agent['id']}.json").read_text())
        objects = next(s for s in policy["Statement"] if "s3:PutObject" in s["Action"])
        assert objects["Resource"] == [f"arn:aws:s3:::recordings/field/{agent['id']}/*"]
        listing = next(s for s in policy["Statement"] if s["Action"] == ["s3:ListBucket"])
        assert listing["Condition"]["StringLike"]["s3:prefix"] == [f"field/{agent['id']}/*"]
