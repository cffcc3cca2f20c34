"""The MinIO task list without a MinIO server (none on these machines): settings, unit and per-agent policies.

``central_minio_configure_users: false`` skips the ``mc`` calls, which need a running MinIO.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.integration.ansible.deployment import GROUP, USER, host_python, run_local_play

pytestmark = pytest.mark.integration

AGENTS = [
    {"id": "pi-a", "s3_access_key": "AKA", "s3_secret_key": "secret-a", "s3_prefix": "field"},
    {"id": "pi-b", "s3_access_key": "AKB", "s3_secret_key": "secret-b", "s3_prefix": "field"},
]
# MinIO accepts only AWS IAM action names: SeaweedFS's extra multipart names must not reach it.
MINIO_ACTIONS = {
    "s3:PutObject",
    "s3:GetObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
}


def test_minio_settings_unit_and_one_policy_per_identity(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pki = tmp_path / "pki"  # what the central role's TLS tasks would have made
    pki.mkdir()
    (pki / "s3.pem").write_text("certificate\n")
    (pki / "s3.key").write_text("private key\n")
    play = [
        {
            "name": "MinIO tasks of the central role",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": host_python()},
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
                        "central_pki_dir": str(pki),
                        "central_s3_admin_access_key": "root-user",
                        "central_s3_admin_secret_key": "root-secret",
                        "central_controller_s3_access_key": "CTL",
                        "central_controller_s3_secret_key": "controller-secret",
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
    assert (
        f"--address 0.0.0.0:9000 --console-address 127.0.0.1:9001 --certs-dir {root}/etc/edgefleet/minio-certs" in env
    )
    certs = root / "etc/edgefleet/minio-certs"
    assert (certs / "public.crt").read_text() == "certificate\n"
    assert stat.S_IMODE((certs / "private.key").stat().st_mode) == 0o640
    unit = (root / "etc/systemd/system/minio.service").read_text()
    assert f"EnvironmentFile={root}/etc/default/minio" in unit
    assert "ProtectSystem=strict" in unit
    policies = root / "etc/edgefleet/minio-policies"
    assert sorted(p.name for p in policies.iterdir()) == ["agent-pi-a.json", "agent-pi-b.json", "controller.json"]
    for agent in AGENTS:
        policy = json.loads((policies / f"agent-{agent['id']}.json").read_text())
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert actions == MINIO_ACTIONS  # no delete, no listing of the bucket
        for statement in policy["Statement"]:
            if statement["Action"] == ["s3:ListBucketMultipartUploads"]:
                assert statement["Resource"] == ["arn:aws:s3:::recordings"]
                assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"field/{agent['id']}/*"]}}
            else:
                assert statement["Resource"] == [f"arn:aws:s3:::recordings/field/{agent['id']}/*"]
    controller = json.loads((policies / "controller.json").read_text())
    assert {a for s in controller["Statement"] for a in s["Action"]} == {
        "s3:ListBucketMultipartUploads",
        "s3:AbortMultipartUpload",
    }
