"""The ``edgefleet`` entry point: every sub-command of docs/design.md exists; a missing extra is named, not hidden;
the help stands on its own."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

from edgefleet import cli
from fleet_base import __version__

DESIGN_COMMANDS = {
    "demo", "agent", "controller", "dashboard", "upload", "restore", "verify", "simulate", "transcoder",
}  # fmt: skip


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


STAND_IN = "tests.unit.edgefleet.cli.stand_in_command"
AS_PROGRAM = (
    "import sys\n"
    "from edgefleet import cli\n"
    f"cli.COMMANDS = (cli.Command('quick', {STAND_IN!r}, 'x', 'agent', True),\n"
    f"                cli.Command('slow', {STAND_IN!r}, 'x', 'agent'))\n"
    "sys.exit(cli.main())\n"
)  # fmt: skip


@pytest.mark.parametrize(("command", "teardown"), [("quick", False), ("slow", True)])
def test_a_quick_exit_command_run_as_a_program_skips_the_teardown_after_flushing(
    command: str, teardown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    done = subprocess.run(
        [sys.executable, "-c", AS_PROGRAM, command, "3"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 3
    assert done.stdout == "result OPENBLAS_NUM_THREADS=1"  # flushed before the end, set before the command
    assert "logged" in done.stderr
    assert ("teardown ran" in done.stderr) is teardown


def test_a_quick_exit_command_called_with_arguments_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", (cli.Command("quick", STAND_IN, "x", "agent", True),))
    monkeypatch.setattr("atexit.register", lambda *_: None)  # not this test process's teardown
    assert cli.main(["quick", "4"]) == 4  # in process (tests, other callers): never os._exit


def test_python_m_edgefleet_is_the_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"edgefleet {__version__}")


def test_only_upload_ends_quickly() -> None:
    assert [c.name for c in cli.COMMANDS if c.quick_exit] == ["upload"]


def test_version_is_the_release_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgefleet {__version__}"


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


def _help(command: cli.Command | None) -> str:
    if command is None:
        return cli.build_parser().format_help()
    return cli.build_command_parser(command, importlib.import_module(command.module)).format_help()


#: what a user's help must not contain: reST markup, the internal design's section numbers, paths outside the clone
NOT_IN_HELP = [r"``", r"DESIGN", r"§", r"\.\./shared", r":(func|class|mod|meth):"]


@pytest.mark.parametrize("command", [None, *cli.COMMANDS], ids=lambda c: c.name if c else "edgefleet")
@pytest.mark.parametrize("pattern", NOT_IN_HELP)
def test_help_stands_on_its_own(command: cli.Command | None, pattern: str) -> None:
    assert not re.search(pattern, _help(command))


def test_the_top_level_help_says_where_to_start() -> None:
    text = _help(None)
    assert "edgefleet COMMAND --help" in text
    assert "edgefleet demo" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_STATE_HOME": "/srv/state"}, "/srv/state/edgefleet/upload"),
        ({"HOME": "/home/pat"}, "/home/pat/.local/state/edgefleet/upload"),
    ],
)
def test_upload_help_shows_where_the_journal_goes(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    upload = next(c for c in cli.COMMANDS if c.name == "upload")
    text = " ".join(_help(upload).split())  # argparse wraps lines
    assert f"(default: {expected}," in text


def test_upload_help_names_outcomes_and_exit_codes() -> None:
    text = _help(next(c for c in cli.COMMANDS if c.name == "upload"))
    for words in ("stored raw: REASON", "FAILED  FILE: REASON", "Exit status: 0", "--give-up-after SECONDS"):
        assert words in text
