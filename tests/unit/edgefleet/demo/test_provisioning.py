"""The demo's secrets and per-agent logins, and the simulator's credentials file: pure, no services."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefleet.cli import main
from edgefleet.demo.layout import (
    CONTROLLER,
    DemoState,
    Endpoints,
    Paths,
    agent_settings,
    controller_settings,
    credentials_document,
    secret,
    sites_of,
    write_toml,
)
from edgefleet.sim.credentials import AgentCredentials, CredentialsError, load_credentials
from fleet_base.mqtt_url import MqttUrl

ENDS = Endpoints("127.0.0.1", 1883, "http://127.0.0.1:9000", "recordings")


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=64))
def test_secrets_are_url_and_command_line_safe(length: int) -> None:
    value = secret(length)
    assert len(value) == length
    assert value.isascii()
    assert value.isalnum()  # never '-' first, nothing to quote in a URL, TOML string or shell


def test_every_agent_and_the_controller_have_their_own_logins(tmp_path: Path) -> None:
    state = DemoState.new()
    ids = ["pi-1", "pi-2"]
    configs = [agent_settings(state, ENDS, Paths(tmp_path), a, "garden") for a in ids]
    controller = controller_settings(state, ENDS, Paths(tmp_path))
    urls = [MqttUrl.parse(c["mqtt"]["url"]) for c in configs]  # type: ignore[index]
    assert [u.username for u in urls] == ids
    assert len({u.password for u in urls}) == 2
    keys = [(c["s3"]["access_key"], c["s3"]["secret_key"]) for c in [*configs, controller]]  # type: ignore[index]
    assert len(set(keys)) == 3
    assert state.s3_access_key not in {k for k, _ in keys}  # nobody runs with the admin key
    assert keys[2] == state.s3_key(CONTROLLER)
    assert "agent_sites" not in controller


def test_the_controller_gets_the_provisioned_sites(tmp_path: Path) -> None:
    ids = ["a", "b", "c", "d"]
    sites = sites_of(ids)
    assert sites == {"a": "garden", "b": "meadow", "c": "forest", "d": "garden"}
    controller = controller_settings(DemoState.new(), ENDS, Paths(tmp_path), sites)
    assert controller["agent_sites"] == sites


def test_state_survives_a_second_run_and_old_leading_dashes_are_renewed(tmp_path: Path) -> None:
    state = DemoState.new()
    state.agent_password("pi-1")
    state.s3_key("pi-1")
    state.save(tmp_path)
    assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
    again = DemoState.load_or_create(tmp_path)
    assert again == state
    old = json.loads((tmp_path / "demo.json").read_text())
    old |= {"dashboard_password": "-abc", "agent_passwords": {"pi-1": "-x", "pi-2": "ok"}, "retired": 1}
    (tmp_path / "demo.json").write_text(json.dumps(old))
    renewed = DemoState.load_or_create(tmp_path)
    assert not renewed.dashboard_password.startswith("-")
    assert renewed.agent_passwords == {"pi-2": "ok"}
    assert not renewed.agent_password("pi-1").startswith("-")


def test_the_credentials_file_round_trips(tmp_path: Path) -> None:
    state = DemoState.new()
    path = write_toml(tmp_path / "c.toml", credentials_document(state, {"pi-1": "garden", "pi-2": "forest"}))
    loaded = load_credentials(path)
    assert loaded["pi-1"] == AgentCredentials("garden", state.agent_password("pi-1"), *state.s3_key("pi-1"))
    assert loaded["pi-2"].site == "forest"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[agents."pi-1"]\npassword = "x"\n', "unknown key"),
        ('[agents."pi-1"]\ns3_access_key = "x"\n', "go together"),
        ('[agents."pi-1"]\nmqtt_password = 5\n', "must be a string"),
        ('[other]\nx = "y"\n', "only \\[agents"),
        ("agents = 3\n", "only \\[agents"),
        ("[agents\n", "not valid TOML"),
    ],
)
def test_bad_credentials_files_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match=problem):
        load_credentials(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_credentials_file_others_can_read_is_refused(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_toml(tmp_path / "c.toml", credentials_document(DemoState.new(), {"pi-1": "garden"}))
    path.chmod(mode)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(path)
    argv = ["simulate", "--agents", "1", "--mqtt-url", "mqtt://127.0.0.1:9", "--credentials", str(path)]
    assert main(argv) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_simulate_needs_shared_s3_keys_only_for_agents_without_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("EDGEFLEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EDGEFLEET_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("EDGEFLEET_S3_BUCKET", "recordings")
    path = write_toml(tmp_path / "c.toml", credentials_document(DemoState.new(), {"sim-01-pi4-4g": "garden"}))
    argv = ["simulate", "--agents", "2", "--upload", "--mqtt-url", "mqtt://127.0.0.1:9", "--credentials", str(path)]
    assert main([*argv, "--duration", "0.01", "--dir", str(tmp_path / "fleet")]) == 2
    assert "access_key is not set" in capsys.readouterr().err
