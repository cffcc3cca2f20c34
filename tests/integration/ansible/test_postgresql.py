"""The central role's optional PostgreSQL tasks against this machine's cluster: role and database made once."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from edgefleet.localservices import Postgres
from tests.integration.ansible.deployment import host_python, recap, run_local_play

pytestmark = pytest.mark.integration


def test_role_and_database_are_created_once_and_accept_the_password(postgres: Postgres, tmp_path: Path) -> None:
    name = f"edgefleet_ansible_{secrets.token_hex(4)}"
    password = f"it's-{secrets.token_urlsafe(12)}"  # a quote must survive the SQL
    postgres.created.append(name)  # dropped with the fixture's other databases
    play = [
        {
            "name": "PostgreSQL tasks of the central role",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": host_python()},
            "tasks": [
                {
                    "name": "Run them",
                    "ansible.builtin.include_role": {"name": "central", "tasks_from": "postgresql.yml"},
                    "vars": {
                        "central_postgresql_enabled": True,
                        "central_manage_services": False,
                        "central_postgresql_user": name,
                        "central_postgresql_db": name,
                        "central_postgresql_password": password,
                    },
                }
            ],
        }
    ]
    first, second = run_local_play(play, tmp_path), run_local_play(play, tmp_path)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert recap(first)["localhost"]["changed"] == 2  # role + database
    assert recap(second)["localhost"]["changed"] == 0
    assert password not in first.stdout  # no_log on the statement that holds it
    url = f"postgresql://{name}:{quote(password, safe='')}@127.0.0.1:{postgres.port}/{name}"
    with psycopg.connect(url) as conn:
        row = conn.execute("select current_user, current_database()").fetchone()
    assert row == (name, name)
