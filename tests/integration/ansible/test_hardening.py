"""What the roles wrote for security, read back from the deployment: the broker's listeners, SeaweedFS on loopback,
per-device S3 policies, where the keys went and who may read them, systemd hardening that systemd accepts."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ansible.deployment import AGENTS, CENTRAL, GROUP, Deployment, mosquitto_listeners

pytestmark = pytest.mark.integration

MOSQUITTO_CONF = "/etc/mosquitto/conf.d/edgefleet.conf"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def test_broker_listens_with_tls_only_and_ties_client_ids_to_users(deployment: Deployment) -> None:
    conf = deployment.path(CENTRAL, MOSQUITTO_CONF).read_text()
    general = conf.split("\nlistener ")[0]
    assert re.search(r"^allow_anonymous false$", general, re.MULTILINE)
    assert re.search(r"^message_size_limit 262144$", general, re.MULTILINE)
    tls, local = mosquitto_listeners(conf)
    assert (tls["port"], tls["address"]) == (str(deployment.ports["mqtt"]), "127.0.0.1")  # 0.0.0.0 by default
    assert tls["certfile"] == str(deployment.path(CENTRAL, "/etc/mosquitto/certs/edgefleet-broker.pem"))
    assert tls["keyfile"] == str(deployment.path(CENTRAL, "/etc/mosquitto/certs/edgefleet-broker.key"))
    assert tls["tls_version"] == "tlsv1.2"
    assert (local["port"], local["address"]) == (str(deployment.ports["mqtt_local"]), "127.0.0.1")
    assert "certfile" not in local  # the plaintext listener exists only on loopback
    for listener in (tls, local):
        assert listener["use_username_as_clientid"] == "true"


def test_every_seaweedfs_port_is_on_loopback_and_only_s3_is_proxied(deployment: Deployment) -> None:
    argv = deployment.exec_start(CENTRAL, "edgefleet-seaweedfs.service")
    flags = dict(arg.lstrip("-").split("=", 1) for arg in argv[2:])
    assert (flags["ip"], flags["ip.bind"]) == ("127.0.0.1", "127.0.0.1")
    ports = {name: int(value) for name, value in flags.items() if name.endswith((".port", ".port.grpc"))}
    for name in ("master", "volume", "filer", "admin", "s3"):  # every one set: none left at a default
        assert ports[f"{name}.port.grpc"] == ports[f"{name}.port"] + 10000, name
    assert ports["s3.port"] == deployment.ports["s3_internal"]
    assert flags["s3.cert.file"] == str(deployment.path(CENTRAL, "/etc/edgefleet/tls/s3.pem"))
    assert (flags["s3.port.iceberg"], flags["s3.port.lance"], flags["webdav"]) == ("0", "0", "false")
    socket = deployment.unit_settings(CENTRAL, "edgefleet-s3-proxy.socket")
    assert socket["ListenStream"] == f"127.0.0.1:{deployment.ports['s3']}"  # central_s3_bind, 0.0.0.0 by default
    proxy = deployment.exec_start(CENTRAL, "edgefleet-s3-proxy.service")
    assert proxy[-1] == f"127.0.0.1:{deployment.ports['s3_internal']}"


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return list(statements)


def test_each_agent_s3_policy_covers_its_own_prefix_only(deployment: Deployment) -> None:
    config = json.loads(deployment.path(CENTRAL, "/etc/edgefleet/seaweedfs-s3.json").read_text())
    identities = {i["name"]: i for i in config["identities"]}
    policies = {p["name"]: json.loads(p["content"]) for p in config["policies"]}
    # the central monitor's probe and the catalog's identities are there because the deployment sets their keys
    assert set(identities) == {"admin", "controller", "central-probe", "catalog", *(f"agent-{a}" for a in AGENTS)}
    assert identities["admin"]["actions"] == ["Admin", "Read", "List", "Tagging", "Write"]
    for agent in AGENTS:
        identity = identities[f"agent-{agent}"]
        assert "actions" not in identity  # rights come only from its policy
        (policy_name,) = identity["policyNames"]
        for statement in _statements(policies[policy_name]):
            assert not any("Delete" in a or a == "s3:ListBucket" for a in statement["Action"])
            if statement["Resource"] == ["arn:aws:s3:::recordings"]:  # bucket level: only with its prefix
                assert statement["Action"] == ["s3:ListBucketMultipartUploads"]
                assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"field/{agent}/*"]}}
            else:
                assert statement["Resource"] == [f"arn:aws:s3:::recordings/field/{agent}/*"]
    (controller_policy,) = identities["controller"]["policyNames"]
    actions = {a for s in _statements(policies[controller_policy]) for a in s["Action"]}
    assert actions == {"s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload"}
    (probe_policy,) = identities["central-probe"]["policyNames"]
    probe_resources = {r for s in _statements(policies[probe_policy]) for r in s["Resource"]}
    assert probe_resources == {"arn:aws:s3:::recordings/_probe/*"}


def _mode(path: Path) -> tuple[int, str]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), path.group()


def test_keys_are_readable_only_by_their_service(deployment: Deployment) -> None:
    # The CA key never leaves the Ansible control machine, where only its owner may read it.
    assert stat.S_IMODE(deployment.pki.stat().st_mode) == 0o700
    assert stat.S_IMODE((deployment.pki / "ca.key").stat().st_mode) == 0o600
    for host in (CENTRAL, *AGENTS):
        assert not list(deployment.root(host).rglob("ca.key")), host
    expected = {  # in the test, the service groups (mosquitto, edgefleet) are all the test user's group
        "/etc/mosquitto/certs/edgefleet-broker.key": (0o640, GROUP),
        "/etc/mosquitto/certs/edgefleet-broker.pem": (0o644, GROUP),
        "/etc/edgefleet/tls/s3.key": (0o640, GROUP),
        "/etc/edgefleet/tls/dashboard.key": (0o640, GROUP),
        "/etc/edgefleet/ca.pem": (0o644, GROUP),
        "/etc/edgefleet/controller.toml": (0o640, GROUP),
        "/etc/edgefleet/seaweedfs-s3.json": (0o640, GROUP),
        "/etc/mosquitto/edgefleet.passwd": (0o640, GROUP),
    }
    for path, mode in expected.items():
        assert _mode(deployment.path(CENTRAL, path)) == mode, path
    tls_dir = deployment.path(CENTRAL, "/etc/edgefleet/tls")
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o750
    assert (tls_dir / "s3.key").read_bytes() == (deployment.pki / "s3.key").read_bytes()


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
EXPOSURE_THRESHOLD = 45  # systemd-analyze security, x10: every unit scores 3.2-3.6 today


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (Debian's systemd package)")
def test_systemd_accepts_every_unit_and_its_hardening(deployment: Deployment, tmp_path: Path) -> None:
    units = [
        (host, unit)
        for host in (CENTRAL, *AGENTS)
        for unit in deployment.path(host, "/etc/systemd/system").iterdir()
        if unit.suffix in (".service", ".socket")
    ]
    assert {u.name for _, u in units} >= {
        "edgefleet-agent.service",
        "edgefleet-controller.service",
        "edgefleet-dashboard.service",
        "edgefleet-seaweedfs.service",
        "edgefleet-s3-proxy.service",
        "edgefleet-s3-proxy.socket",
    }
    for host, unit in units:  # one folder per host: verify loads the socket's service by name next to it
        (tmp_path / host).mkdir(exist_ok=True)
        shutil.copy(unit, tmp_path / host / unit.name)
    for host, unit in units:
        result = subprocess.run(
            [str(SYSTEMD_ANALYZE), "verify", "--man=no", str(tmp_path / host / unit.name)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        )
        complaints = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if re.search(r"Unknown (key|section)|[Ii]nvalid|Failed to parse|bad-setting|Missing", line)
        ]
        assert complaints == [], unit.name
        settings = deployment.unit_settings(host, unit.name)
        if unit.suffix == ".service":
            exposure = subprocess.run(  # systemd's own score, 0 (locked down) to 10: "OK" below 5
                [str(SYSTEMD_ANALYZE), "security", "--offline=true", f"--threshold={EXPOSURE_THRESHOLD}", str(unit)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert exposure.returncode == 0, (unit.name, exposure.stdout[-300:])
            for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices", "ProtectKernelTunables"):
                assert settings.get(key) == "true", (unit.name, key)
            assert settings["ProtectSystem"] == "strict", unit.name
            assert settings["CapabilityBoundingSet"] == "", unit.name
