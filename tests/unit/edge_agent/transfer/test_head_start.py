"""The engine with ``edgefleet upload``'s head start as its codec (``fleet_audio.headstart``): the early source is
the one uploaded, and its bytes are right; when the S3 set-up then fails, nothing is journalled and the encoder
thread is stopped. And what the upload path does not load."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits, MiB
from edge_agent.transfer.journal import QUEUED
from fleet_audio.headstart import HeadStart
from fleet_audio.source import FlacSource
from tests.corpus import write_wav
from tests.unit.edge_agent.transfer.test_file_job import Setup

LIMITS = Limits(concurrency=2, part_size=5 * MiB, compression_level=5)


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("head") / "h.wav", seconds=40, rate=48000, channels=2, kind="noise")


def encoders_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("encode-ahead") and t.is_alive()]


def test_the_early_source_is_uploaded_and_stores_the_same_object(tmp_path: Path, wav: Path) -> None:
    plain = Setup(tmp_path / "plain")
    want = plain.run(wav, LIMITS)
    head = HeadStart(wav, 5, lambda src: 10 * MiB)
    early = head._early
    assert isinstance(early, FlacSource)
    assert early._ahead is not None
    setup = Setup(tmp_path / "early", codec=head)
    got = setup.run(wav, LIMITS)
    head.close()
    assert got.ok, got
    assert early._ahead.taken  # the engine read the source that started early
    assert setup.store.objects[got.key].data == plain.store.objects[want.key].data
    assert setup.store.sent == [2, 1]
    assert encoders_alive() == []


def test_a_failing_s3_set_up_after_a_head_start_journals_nothing_and_stops_the_encoder(
    tmp_path: Path, wav: Path
) -> None:
    head = HeadStart(wav, 5, lambda src: 1 << 30)  # it would encode the whole file
    setup = Setup(tmp_path / "state", codec=head)
    setup.store.plan = lambda op: "fatal" if op == "create" else None
    result = setup.run(wav, LIMITS)
    head.close()
    assert not result.ok
    assert result.reason == "S3 AccessDenied: create"  # the usual error
    assert setup.journal.upload(str(wav)) is None  # no upload id, nothing to resume
    assert setup.journal.status(str(wav)) == (QUEUED, "", result.reason)
    assert setup.store.uploads == {}
    assert setup.store.sent == []
    assert encoders_alive() == []


UPLOAD_PATH = """
import json, sys
import edgefleet.cli, edge_agent.cli_upload, fleet_audio.headstart, fleet_audio.probe
import edge_agent.transfer, edge_agent.transfer.encoding, edge_agent.transfer.progress
print(json.dumps(sorted(m for m in ("statistics", "zstandard") if m in sys.modules)))
"""


def test_the_upload_path_does_not_load_what_only_other_paths_need() -> None:
    """``statistics`` (with ``decimal`` and ``fractions``: one median) and ``zstandard`` (the rare zstd objects):
    7-9 ms of every ``edgefleet upload``'s start under ``-X importtime`` (load ~1.4)."""
    done = subprocess.run([sys.executable, "-c", UPLOAD_PATH], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
