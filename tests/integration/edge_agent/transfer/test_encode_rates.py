"""Real encodes refine the engine's encode-rate estimate; the cost model then chooses each new file's level."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from edge_agent.engine.limits import Limits
from edge_agent.transfer import EngineConfig, open_engine
from edge_agent.transfer.encoding import Compression, Mode
from edgefleet.localservices import SeaweedS3
from tests.integration.edge_agent.transfer.helpers import PART, Recorder, settings_via

pytestmark = pytest.mark.integration


def _engine(s3_server: SeaweedS3, tmp_path: Path, limits: Limits, compression: Compression):  # type: ignore[no-untyped-def]
    config = EngineConfig(
        s3=settings_via(s3_server), agent_id="pi-7", state_dir=tmp_path / "state", prefix=f"it/{tmp_path.name}",
        settle_s=0.0,
    )  # fmt: skip
    return open_engine(config, limits, on_event=Recorder(), compression=compression)


def test_a_real_encode_is_measured(s3_server: SeaweedS3, tmp_path: Path, wavs: dict[str, Path]) -> None:
    compression = Compression(Mode.FORCED, probed={5: 1.0})  # an absurd probe the real encode must correct
    engine = _engine(s3_server, tmp_path, Limits(concurrency=2, part_size=PART, compression_level=5), compression)
    try:
        engine.enqueue(wavs["mid"])
        report = engine.run_until_idle()
        assert report.ok, report
        [result] = report.results
        rates, ratios = engine.compression.measured()
        assert rates[5] > 1e5  # real WAV bytes per second of encoding, not the probe's 1 B/s
        assert ratios[5] == pytest.approx(result.stored_bytes / result.original_bytes)
        assert engine.stats().compression_ratio_by_level[5] == ratios[5]
    finally:
        engine.close()


def test_the_model_stores_raw_when_the_encoder_cannot_keep_up(
    s3_server: SeaweedS3, tmp_path: Path, wavs: dict[str, Path]
) -> None:
    """An encoder measured at 1 kB/s is far slower than any link: once the link is measured (a raw upload under
    a bandwidth cap, so that it takes seconds), the model sends the next file raw."""
    cap = 8 * 1024 * 1024
    compression = Compression(Mode.MODEL, probed=dict.fromkeys(range(9), 1000.0))
    limits = Limits(concurrency=1, part_size=PART, bandwidth_bps=cap)
    engine = _engine(s3_server, tmp_path, limits, compression)
    try:
        engine.set_limits(Limits(concurrency=1, part_size=PART, bandwidth_bps=cap, compression_level=-1))
        engine.enqueue(wavs["mid"])
        assert engine.run_until_idle().ok
        assert engine.stats().throughput_bps > 0, "the link is measured"
        engine.set_limits(limits)
        engine.enqueue(wavs["small24"])
        report = engine.run_until_idle()
        assert [r.stored_as for r in report.results] == ["raw"], report
        plan = compression.plan(limits, engine.stats().throughput_bps)
        assert plan is not None
        assert plan.reason.startswith("raw: the CPU sends raw at 0.0 MB/s, FLAC 0 at 0.0 MB/s of WAV; link ")
    finally:
        engine.close()


class Seen(Compression):
    """The model as the engine uses it, noting what it was told: the link rate and the senders' held share each
    new file's level was chosen with, and the link rate so far that each stored file brought."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.links: list[float | None] = []
        self.held: list[float | None] = []
        self.stored: list[float | None] = []

    def start_file(self, limits: Limits, link_bps: float | None, sender_held: float | None = None) -> int:
        self.links.append(link_bps)
        self.held.append(sender_held)
        return super().start_file(limits, link_bps, sender_held)

    def file_stored(self, stored_bytes: int, seconds: float, link_so_far: float | None = None) -> None:
        self.stored.append(link_so_far)
        super().file_stored(stored_bytes, seconds, link_so_far)


def test_the_model_starts_one_file_until_the_link_is_measured(
    s3_server: SeaweedS3, tmp_path: Path, wavs: dict[str, Path]
) -> None:
    """Three files queued at once with room for three: the first starts alone, its level chosen with nothing
    measured (the default); the other two start once its upload has measured the link, so the model chooses
    their levels from a real rate. Without the gate all three would be chosen on the guess."""
    spool = tmp_path / "spool"
    spool.mkdir()
    files = [spool / f"rec-{i}.wav" for i in range(3)]
    for f in files:
        shutil.copyfile(wavs["mid"], f)
    compression = Seen(Mode.MODEL)
    limits = Limits(concurrency=3, part_size=PART, bandwidth_bps=6 * 1024 * 1024)
    engine = _engine(s3_server, tmp_path, limits, compression)
    try:
        for f in files:
            engine.enqueue(f)
        report = engine.run_until_idle()
        assert report.ok, report
        first, *others = compression.links
        assert first is None
        assert len(others) == 2, compression.links
        assert all(link is not None and link > 0 for link in others), compression.links
        # the part threads' run and run-queue time reached the model with the rate (Linux's schedstat)
        assert compression.held[0] is None
        assert all(held is not None and 0 <= held <= 1 for held in compression.held[1:]), compression.held
    finally:
        engine.close()


def test_a_stored_file_brings_its_parts_rate_on_the_wire_to_the_model(
    s3_server: SeaweedS3, tmp_path: Path, wavs: dict[str, Path]
) -> None:
    """On a link that carries a whole file in less than a second on the wire (loopback here) the engine's
    estimate has no sample yet: the file's answered parts over their time on the wire are the next file's link,
    not a floor made of the file's whole time."""
    compression = Seen(Mode.MODEL)
    limits = Limits(concurrency=2, part_size=PART)
    engine = _engine(s3_server, tmp_path, limits, compression)
    try:
        engine.enqueue(wavs["mid"])
        assert engine.run_until_idle().ok
        [link] = compression.stored
        assert link is not None
        assert link > 0
        plan = compression.plan(limits, None)
        assert plan is not None
        assert "whole file's rate" not in plan.reason, plan.reason
        assert f"{link / 1e6:.1f} MB/s" in plan.reason, plan.reason
    finally:
        engine.close()
