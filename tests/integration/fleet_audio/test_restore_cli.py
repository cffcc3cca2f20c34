"""``edgefleet restore`` / ``edgefleet verify`` against a real S3 server (SeaweedFS).

Objects are stored with one plain ``put_object`` of the codec's bytes and metadata: the multipart engine is
tested by the transfer tests; here what matters is what restore and verify make of a stored object.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefleet.cli import main
from edgefleet.localservices import SeaweedS3
from fleet_audio import packed
from fleet_audio.source import object_key, open_source
from tests.corpus import bext_payload, list_info_payload, write_wav
from tests.unit.fleet_audio.flactool import needs_flac, object_bytes

pytestmark = pytest.mark.integration

CHUNKS = [(b"bext", bext_payload(), "before"), (b"LIST", list_info_payload(INAM="owl"), "after")]
CASES = [
    ("16-bit stereo", {"channels": 2, "bits": 16, "extra_chunks": CHUNKS}),
    ("24-bit plain PCM", {"channels": 1, "bits": 24, "extra_chunks": CHUNKS}),
    ("24-bit extensible", {"channels": 2, "bits": 24, "extensible": True}),
    ("float (zstd)", {"channels": 1, "float32": True, "extra_chunks": CHUNKS}),
]


@pytest.fixture
def s3_env(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


def _store(s3_server: SeaweedS3, path: Path, level: int = 5) -> str:
    source = open_source(path, level)
    try:
        obj = object_bytes(source)
        key = object_key("it-audio", "pi-1", path, source)
        s3_server.client().put_object(
            s3_server.bucket,
            key,
            io.BytesIO(obj),
            len(obj),
            content_type=source.content_type,
            metadata=dict(source.metadata),
        )
        return key
    finally:
        source.close()


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_restore_and_verify(s3_env: SeaweedS3, tmp_path: Path, name: str, kwargs: dict[str, Any]) -> None:
    path = write_wav(tmp_path / f"{name.replace(' ', '_')}.wav", 1.5, 32000, kind="field", seed=3, **kwargs)
    key = _store(s3_env, path)
    if "zstd" in name:  # FLAC cannot hold float: zstd when it saves 5 % of the file (small: all of it), else raw
        assert key.endswith(".zst" if packed.saves_enough(path.read_bytes()) else ".wav")
    else:
        assert key.endswith(".flac")
    out = tmp_path / "out" / "restored.wav"
    out.parent.mkdir()
    assert main(["restore", key, str(out)]) == 0
    assert out.read_bytes() == path.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["restored.wav"]
    assert main(["verify", key, str(path)]) == 0


def test_verify_detects_a_different_original(
    s3_env: SeaweedS3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_wav(tmp_path / "a.wav", 0.5, 16000, seed=1)
    key = _store(s3_env, path)
    other = write_wav(tmp_path / "b.wav", 0.5, 16000, seed=2)
    assert main(["verify", key, str(other)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_missing_object_and_damaged_object(s3_env: SeaweedS3, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 0.5, 16000, seed=1)
    out = tmp_path / "out.wav"
    assert main(["restore", "no/such/key.flac", str(out)]) == 1
    assert main(["verify", "no/such/key.flac", str(path)]) == 2
    assert not out.exists()
    key = _store(s3_env, path)
    obj = s3_env.client().get_object(s3_env.bucket, key).read()
    damaged = obj[:-200] + bytes(b ^ 0xFF for b in obj[-200:])
    s3_env.client().put_object(s3_env.bucket, key, io.BytesIO(damaged), len(damaged))
    assert main(["restore", key, str(out)]) == 1
    assert main(["verify", key, str(path)]) == 1
    assert list(tmp_path.glob(".edgefleet-restore-*")) == []
    assert not out.exists()


def test_console_script_with_flags(s3_server: SeaweedS3, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 0.5, 16000, 2, 24, seed=4)
    key = _store(s3_server, path)
    flags = [
        f"--s3-endpoint={s3_server.endpoint}",
        f"--s3-access-key={s3_server.access_key}",
        f"--s3-secret-key={s3_server.secret_key}",
        f"--s3-bucket={s3_server.bucket}",
    ]
    out = tmp_path / "r.wav"
    cmd = [sys.executable, "-m", "edgefleet.cli", "restore", key, str(out), *flags]
    assert subprocess.run(cmd, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin"}).returncode == 0
    assert out.read_bytes() == path.read_bytes()


def _put(s3: SeaweedS3, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
    s3.client().put_object(s3.bucket, key, io.BytesIO(data), len(data), metadata=metadata)  # type: ignore[arg-type]
    return key


def _plain_flac(tmp_path: Path) -> bytes:
    """A FLAC file edgefleet did not write (the reference encoder: no edgf block, no riff pieces)."""
    wav = write_wav(tmp_path / "plain.wav", 0.3, 16000, seed=9)
    subprocess.run(["flac", "-s", "-f", "-o", str(tmp_path / "plain.flac"), str(wav)], check=True)
    return (tmp_path / "plain.flac").read_bytes()


@needs_flac
@pytest.mark.parametrize("content", ["text", "empty", "plain FLAC", "unknown format"])
def test_an_object_that_is_not_ours_is_refused_unless_raw(s3_env, tmp_path, capsys, content):
    data, meta = {
        "text": (b"just some notes\n", None),
        "empty": (b"", None),
        "plain FLAC": (_plain_flac(tmp_path), None),
        "unknown format": (b"whatever", {"edgefleet-format": "flac-v99"}),
    }[content]
    key = _put(s3_env, f"foreign/{content.replace(' ', '-')}.flac", data, meta)
    out = tmp_path / "out.wav"
    assert main(["restore", key, str(out)]) == 1
    err = capsys.readouterr().err
    assert "is not an edgefleet object" in err
    assert "--raw" in err
    assert not out.exists()
    assert list(tmp_path.glob(".edgefleet-restore-*")) == []
    original = tmp_path / "original"
    original.write_bytes(data)
    assert main(["verify", key, str(original)]) == 2
    assert "cannot check" in capsys.readouterr().err
    assert main(["restore", "--raw", key, str(out)]) == 0
    assert out.read_bytes() == data
    assert "as stored, not checked" in capsys.readouterr().out
    assert main(["verify", "--raw", key, str(original)]) == 0


def test_an_existing_out_is_replaced_only_with_force(s3_env, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", 0.5, 16000, seed=1)
    key = _store(s3_env, path)
    out = tmp_path / "out.wav"
    out.write_bytes(b"precious")
    assert main(["restore", key, str(out)]) == 1
    assert "exists: not replacing it (--force replaces it)" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["restore", "--force", key, str(out)]) == 0
    assert out.read_bytes() == path.read_bytes()
    assert list(tmp_path.glob(".edgefleet-restore-*")) == []


def test_restoring_into_a_folder_names_the_file_after_the_key(s3_env, tmp_path, capsys):
    path = write_wav(tmp_path / os.fsdecode(b"rec\xff\xfe take 1.wav"), 0.5, 16000, seed=2)
    key = _store(s3_env, path)
    assert key.rsplit("/", 1)[-1].startswith("rec___take_1__")
    assert key.isascii()
    folder = tmp_path / "restored"
    folder.mkdir()
    assert main(["restore", key, str(folder)]) == 0
    [restored] = folder.iterdir()
    assert restored.name == key.rsplit("/", 1)[-1].removesuffix(".flac") + ".wav"
    assert restored.read_bytes() == path.read_bytes()
    assert main(["restore", key, str(folder)]) == 1  # the second time it exists
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["", "..", "a/../b.flac", "/a/b.flac", "a//b.flac", "a/b/", "./a.flac", "a\nb.flac"])
def test_an_invalid_key_is_a_clear_error(s3_env, tmp_path, capsys, key):
    path = write_wav(tmp_path / "a.wav", 0.2, 16000, seed=1)
    assert main(["restore", key, str(tmp_path / "out.wav")]) == 1
    assert main(["verify", key, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("invalid key") == 2
    assert "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


def test_missing_object_bucket_and_folder_say_so_in_one_line(s3_env, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", 0.2, 16000, seed=1)
    assert main(["restore", "no/such/key.flac", str(tmp_path / "o.wav")]) == 1
    assert capsys.readouterr().err == f"edgefleet restore: no such object: no/such/key.flac in bucket {s3_env.bucket}\n"
    assert main(["verify", "no/such/key.flac", str(path), "--s3-bucket", "nobucket"]) == 2
    assert capsys.readouterr().err == "edgefleet verify: cannot check: no such bucket: nobucket\n"
    key = _store(s3_env, path)
    assert main(["restore", key, str(tmp_path / "missing" / "o.wav")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write into {tmp_path / 'missing'}: No such file or directory" in err
    assert ".edgefleet-restore" not in err
    assert main(["verify", key, str(tmp_path / "nope.wav")]) == 2
    assert f"cannot read {tmp_path / 'nope.wav'}" in capsys.readouterr().err


def test_console_errors_are_one_line_without_traceback(s3_server, tmp_path):
    env = {"PATH": "/usr/bin", **s3_server.env()}
    for key, code in (("..", 1), ("no/such.flac", 1)):
        cmd = [sys.executable, "-m", "edgefleet.cli", "restore", key, str(tmp_path / "o.wav")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        assert done.returncode == code
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("edgefleet restore: ")
