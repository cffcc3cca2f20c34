"""Real encodes refine the engine's encode-rate estimate; the cost model then chooses each new file's level."""

from __future__ import annotations

from pathlib import Path

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
        assert plan.reason.startswith("raw: encoder 0.0 MB/s at FLAC 0 < link ")
    finally:
        engine.close()
