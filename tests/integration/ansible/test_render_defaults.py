"""The broker and object-store files as a real central node gets them: the role's defaults, only paths and owners
changed (the full deployment test binds everything to 127.0.0.1 instead, to stay off this machine's network)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.integration.ansible.deployment import GROUP, USER, mosquitto_listeners, run_local_play

pytestmark = pytest.mark.integration


def test_default_listeners_reach_the_network_only_over_tls(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tasks = [
        {
            "name": "Folders the role's main task list would have made",
            "ansible.builtin.file": {"path": f"{root}/{{{{ item }}}}", "state": "directory", "mode": "0755"},
            "loop": ["etc/edgefleet", "etc/systemd/system", "var/lib/edgefleet"],
        }
    ]
    owners = {"central_admin_user": USER, "central_admin_group": GROUP, "central_user": USER, "central_group": GROUP}
    for task_file in ("mosquitto.yml", "seaweedfs.yml"):
        tasks.append(
            {
                "name": f"Run {task_file}",
                "ansible.builtin.include_role": {"name": "central", "tasks_from": task_file},
                "vars": {
                    "edgefleet_root": str(root),
                    "central_manage_services": False,
                    "central_mosquitto_user": USER,
                    "central_mosquitto_group": GROUP,
                    "central_controller_mqtt_password": "a-controller-password",
                    "central_s3_admin_access_key": "admin",
                    "central_s3_admin_secret_key": "an-admin-secret-key",
                    "central_controller_s3_access_key": "controller",
                    "central_controller_s3_secret_key": "a-controller-secret",
                    "central_dashboard_mqtt_password": "a-dashboard-mqtt-password",
                    **owners,
                },
            }
        )
    play = [{"name": "defaults", "hosts": "localhost", "gather_facts": False, "tasks": tasks,
             "vars": {"ansible_python_interpreter": sys.executable}}]  # fmt: skip
    result = run_local_play(play, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    conf = (root / "etc/mosquitto/conf.d/edgefleet.conf").read_text()
    assert "use_username_as_clientid true" in conf
    assert "message_size_limit 262144" in conf
    (listener,) = mosquitto_listeners(conf)  # no plaintext listener unless asked for, and then only on loopback
    assert (listener["port"], listener["address"]) == ("8883", "0.0.0.0")
    assert listener["certfile"].endswith("/etc/mosquitto/certs/edgefleet-broker.pem")
    assert listener["use_username_as_clientid"] == "true"

    acl = (root / "etc/mosquitto/edgefleet.acl").read_text().split("\n\n")
    (dashboard,) = [block.strip().splitlines() for block in acl if block.strip().startswith("user dashboard")]
    assert dashboard == [  # queue control: requests to any agent, only its own replies
        "user dashboard",
        "topic write edgefleet/v1/agents/+/queue/request",
        "topic read edgefleet/v1/replies/dashboard/+/queue",
    ]

    units = root / "etc/systemd/system"
    (exec_start,) = [
        ln for ln in (units / "edgefleet-seaweedfs.service").read_text().splitlines() if "ExecStart=" in ln
    ]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in shlex.split(exec_start.removeprefix("ExecStart="))[2:])
    assert (flags["ip"], flags["ip.bind"]) == ("127.0.0.1", "127.0.0.1")
    assert (flags["s3.port"], flags["filer.port"], flags["master.port"], flags["volume.port"]) == (
        "8333",
        "8888",
        "9333",
        "8081",
    )
    assert "ListenStream=0.0.0.0:9000\n" in (units / "edgefleet-s3-proxy.socket").read_text()
    assert "127.0.0.1:8333" in (units / "edgefleet-s3-proxy.service").read_text()
