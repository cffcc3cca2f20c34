"""Fixtures of the transfer integration tests: realistic WAVs, a fault proxy in front of S3, engines."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from edge_agent.engine.limits import Limits
from edge_agent.transfer import Engine, EngineConfig, open_engine
from edge_agent.transfer.context import Codec
from edgefleet.localservices import SeaweedS3
from edgefleet.localservices.process import exclusive
from fleet_base.s3settings import S3Settings
from tests.corpus import write_wav
from tests.faultproxy import FaultProxy
from tests.integration.edge_agent.transfer.helpers import PART, Recorder
from tests.workers import shared_path


@pytest.fixture(scope="session")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Realistic recordings: 'big' is ~38 MB of WAV (~6 parts of FLAC), the others are small. Written once per
    run: parallel workers share them (the first writes, the others wait for it and read)."""
    d = shared_path(tmp_path_factory, "wavs")
    with exclusive(d / ".lock"):
        if not (d / ".complete").exists():
            for name, write in _WAVS.items():
                write(d / f"{name}.wav")
            (d / ".complete").touch()
    return {name: d / f"{name}.wav" for name in _WAVS}


_WAVS: dict[str, Callable[[Path], Path]] = {
    "big": partial(write_wav, seconds=200, rate=48000, channels=2, bits=16, kind="field", seed=11),
    "mid": partial(write_wav, seconds=90, rate=48000, channels=2, bits=16, kind="voice", seed=12),
    "small24": partial(write_wav, seconds=20, rate=48000, channels=1, bits=24, kind="music", seed=13),
    "float": partial(write_wav, seconds=5, rate=48000, channels=1, float32=True, seed=14),
}


@pytest.fixture
def proxy(s3_server: SeaweedS3) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.host, s3_server.port) as p:
        yield p


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., tuple[Engine, Recorder]]]:
    engines: list[Engine] = []

    def make(
        settings: S3Settings,
        limits: Limits | None = None,
        state: str = "state",
        codec: Codec | None = None,
        **cfg: Any,
    ) -> tuple[Engine, Recorder]:
        rec = Recorder()
        cfg.setdefault("stall_timeout_s", 10.0)
        cfg.setdefault("settle_s", 0.0)
        cfg.setdefault("retry_base_s", 0.1)
        cfg.setdefault("retry_cap_s", 1.0)
        cfg.setdefault("prefix", f"it/{tmp_path.name}")  # the S3 server is shared by the session
        config = EngineConfig(s3=settings, agent_id="pi-7", state_dir=tmp_path / state, **cfg)
        engine = open_engine(config, limits or Limits(concurrency=2, part_size=PART), on_event=rec, codec=codec)
        engines.append(engine)
        return engine, rec

    yield make
    for e in engines:
        e.close()


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgefleet.upload")
