"""``edgefleet controller`` entry point: argument parsing, --check, configuration errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from controller.service import main


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main.configure(parser)
    args = parser.parse_args(argv)
    args.verbose = 1
    return args


def test_check_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "controller.toml"
    config.write_text('[mqtt]\nurl = "mqtt://controller:secret@127.0.0.1:1883"\n')
    assert main.run(parse("--config", str(config), "--check")) == 0
    out = capsys.readouterr().out
    assert "configuration OK" in out
    assert "secret" not in out


def test_check_names_the_telemetry_user_the_provisioned_agents_and_the_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "controller.toml"
    config.write_text(
        'shared_group = "g"\n'
        '[mqtt]\nurl = "mqtt://ctl-1:secret@127.0.0.1:1883"\ntelemetry_url = "mqtt://ctl-1-tm:secret2@127.0.0.1:1883"\n'
        '[metrics]\nlisten = "127.0.0.1:9464"\n[agent_sites]\npi-01 = "north"\npi-02 = "south"\n'
    )
    assert main.run(parse("--config", str(config), "--check")) == 0
    out = capsys.readouterr().out
    assert "telemetry mqtt://ctl-1-tm:" in out
    assert "2 agents provisioned" in out
    assert "127.0.0.1:9464" in out
    assert "secret" not in out


def test_bad_configuration_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "controller.toml"
    config.write_text('tick_secnds = 1\n[mqtt]\nurl = "mqtt://c:s@127.0.0.1:1883"\n')
    assert main.run(parse("--config", str(config))) == 2
    assert "tick_secnds: unknown key" in capsys.readouterr().err
