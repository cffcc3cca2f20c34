"""The ``edgefleet`` entry point: every DESIGN §7 sub-command exists; a missing extra is named, not hidden."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from edgefleet import cli

DESIGN_COMMANDS = {"demo", "agent", "controller", "dashboard", "upload", "restore", "verify", "simulate"}


def test_every_design_command_is_registered() -> None:
    assert {c.name for c in cli.COMMANDS} == DESIGN_COMMANDS


def test_a_missing_extra_is_named_with_its_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in = cli.Command("dashboard", "tests.unit.edgefleet.cli.needs_missing_extra", "x", "dashboard")
    monkeypatch.setattr(cli, "COMMANDS", (stand_in,))
    monkeypatch.setattr(cli, "_EXTRA_MODULES", {*cli._EXTRA_MODULES, "fastapi_extra_that_is_not_installed"})
    assert cli.main(["dashboard"]) == cli.MISSING_EXTRA_EXIT
    err = capsys.readouterr().err
    assert "fastapi_extra_that_is_not_installed" in err
    assert "pip install 'edgefleet[dashboard]'" in err


def test_any_other_import_failure_is_a_bug_and_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", (cli.Command("demo", "edgefleet._no_such_module_", "x", "dev"),))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["demo"])


def test_help_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "edgefleet.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in DESIGN_COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_every_command_is_built(command: cli.Command) -> None:
    module = importlib.import_module(command.module)
    assert callable(module.configure)
    assert callable(module.run)
