from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from dashboard import main
from dashboard.auth import check_password


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main.configure(parser)
    return parser.parse_args(argv)


def test_hash_password_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("horse battery\n"))
    assert main.run(parse("--hash-password")) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("$2b$")
    assert check_password("horse battery", printed)


def test_empty_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main.run(parse("--hash-password")) == 2


def test_config_is_required_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.run(parse()) == 2
    bad = tmp_path / "dashboard.toml"
    bad.write_text('database_url = "sqlite://"\nsecret_key = "0123456789abcdef"\nprot = 1\n')
    assert main.run(parse("--config", str(bad))) == 2
    assert "prot: unknown key" in capsys.readouterr().err
