"""The ``edgefleet`` entry point: every DESIGN §7 sub-command exists; unbuilt ones fail loudly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgefleet import cli

DESIGN_COMMANDS = {"demo", "agent", "controller", "dashboard", "upload", "restore", "verify", "simulate"}


def test_every_design_command_is_registered() -> None:
    assert {c.name for c in cli.COMMANDS} == DESIGN_COMMANDS


def test_unbuilt_command_exits_non_zero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ghost = cli.Command("demo", "edgefleet._no_such_module_", "x")
    monkeypatch.setattr(cli, "COMMANDS", (ghost,))
    assert cli.main(["demo"]) == cli.NOT_BUILT_EXIT
    assert "not built yet" in capsys.readouterr().err


def test_help_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "edgefleet.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in DESIGN_COMMANDS:
        assert name in result.stdout
