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


@pytest.mark.parametrize("password", ["", "short", "elevenchars"])
def test_short_passwords_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main.run(parse("--hash-password")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"the password is too short ({len(password)} characters): use at least 12" in captured.err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.1", False),
        ("dash.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert main._loopback(host) is loopback


def test_config_is_required_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.run(parse()) == 2
    bad = tmp_path / "dashboard.toml"
    bad.write_text('database_url = "sqlite://"\nsecret_key = "0123456789abcdef"\nprot = 1\n')
    assert main.run(parse("--config", str(bad))) == 2
    assert "prot: unknown key" in capsys.readouterr().err
