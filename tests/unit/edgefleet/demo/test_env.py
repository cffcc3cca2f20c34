"""``edgefleet demo env``: the demo's S3 settings as one shell line, read back exactly by a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgefleet.demo import print_env
from edgefleet.demo.layout import DemoState, s3_exports


def test_the_export_line_sets_every_s3_variable_exactly_as_a_shell_reads_it() -> None:
    state = DemoState.new()
    state.s3_secret_key = "ab'c d$e"  # quoting must survive anything a secret could hold
    state.s3_ports = {"s3": 23456}
    line = s3_exports(state)
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f'{line}; printf "%s\\n" "$EDGEFLEET_S3_ENDPOINT" "$EDGEFLEET_S3_ACCESS_KEY" '
            f'"$EDGEFLEET_S3_SECRET_KEY" "$EDGEFLEET_S3_BUCKET"',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert shown == ["http://127.0.0.1:23456", state.s3_access_key, "ab'c d$e", "recordings"]


def test_env_of_a_saved_demo_prints_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = DemoState.new()
    state.s3_ports = {"s3": 23457}
    state.save(tmp_path)
    assert print_env(tmp_path) == 0
    assert capsys.readouterr().out.strip() == s3_exports(state)


def test_env_without_a_demo_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert print_env(tmp_path) == 1
    assert "edgefleet demo --dir" in capsys.readouterr().err
