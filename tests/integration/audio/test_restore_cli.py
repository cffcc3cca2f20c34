"""``edgefleet restore`` / ``edgefleet verify`` against a real S3 server (SeaweedFS).

Objects are stored with one plain ``put_object`` of the codec's bytes and metadata: the multipart engine is
tested by the transfer tests; here what matters is what restore and verify make of a stored object.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.audio.source import object_key, open_source
from edgefleet.cli import main
from edgefleet.localservices import SeaweedS3
from tests.corpus import bext_payload, list_info_payload, write_wav
from tests.unit.audio.flactool import object_bytes

pytestmark = pytest.mark.integration

CHUNKS = [(b"bext", bext_payload(), "before"), (b"LIST", list_info_payload(INAM="owl"), "after")]
CASES = [
    ("16-bit stereo", {"channels": 2, "bits": 16, "extra_chunks": CHUNKS}),
    ("24-bit plain PCM", {"channels": 1, "bits": 24, "extra_chunks": CHUNKS}),
    ("24-bit extensible", {"channels": 2, "bits": 24, "extensible": True}),
    ("float (raw)", {"channels": 1, "float32": True, "extra_chunks": CHUNKS}),
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
    assert key.endswith(".wav" if "raw" in name else ".flac")
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
    assert list(tmp_path.glob(".out.wav.*")) == []
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
