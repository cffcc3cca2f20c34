"""The codec through the real engine: ``edgefleet upload`` (multipart) → ``flac -t`` → ``restore`` → ``verify``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgefleet.cli import main
from edgefleet.localservices import SeaweedS3
from fleet_audio.flacmeta import read_header
from tests.corpus import bext_payload, list_info_payload, write_wav

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("identity", ["admin", "agent"])
def test_multipart_objects_restore_bit_exact(
    s3_server: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, identity: str
) -> None:
    """``agent``: with the least-privilege identity of agent pi-4 (its own prefix, no list, no delete)."""
    prefix = f"it-codec-{identity}"
    agent = s3_server.add_agent_identity("pi-4", prefix) if identity == "agent" else None
    for name, value in s3_server.env(agent).items():
        monkeypatch.setenv(name, value)
    chunks = [(b"bext", bext_payload(), "before"), (b"LIST", list_info_payload(INAM="rain"), "after")]
    wav24 = write_wav(tmp_path / "dusk24.wav", 40, 48000, 2, 24, "field", chunks, seed=8)  # 11.5 MB: 3 parts
    wavf = write_wav(tmp_path / "float.wav", 2, 48000, 2, float32=True)
    # level 5 given: without it the cost model may send dusk24 raw (float goes first, and on loopback the senders,
    # not the link, set the measured rate), and this test reads the FLAC object
    upload = ["upload", str(wav24), str(wavf), "--prefix", prefix, "--agent-id", "pi-4", "--compression-level", "5"]
    assert main([*upload, "--part-size", str(5 << 20), "--state-dir", str(tmp_path / "state")]) == 0
    keys = sorted(
        o.object_name for o in s3_server.client().list_objects(s3_server.bucket, f"{prefix}/", recursive=True)
    )
    assert [k.rsplit("/", 1)[1] for k in keys] == ["dusk24.flac", "float.wav.zst"]  # float: FLAC cannot, zstd can
    flac_key, zstd_key = keys
    obj = tmp_path / "obj.flac"
    s3_server.client().fget_object(s3_server.bucket, flac_key, str(obj))
    if shutil.which("flac"):
        assert subprocess.run(["flac", "-t", "-s", str(obj)], check=False).returncode == 0
    with open(obj, "rb") as f:
        header = read_header(f.read)
    assert (header.streaminfo.bits_per_sample, header.streaminfo.channels) == (24, 2)
    assert header.streaminfo.total_samples == 40 * 48000
    for key, original in ((flac_key, wav24), (zstd_key, wavf)):
        out = tmp_path / f"restored-{original.name}"
        assert main(["restore", key, str(out)]) == 0
        assert out.read_bytes() == original.read_bytes()
        assert main(["verify", key, str(original)]) == 0
