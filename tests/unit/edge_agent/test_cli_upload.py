"""``edgefleet upload``'s compression: the level given is forced; without one, the cost model on a quick probe
that runs beside the upload."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edge_agent.cli_upload import PROBE_LEVELS, _compression, _outcome_line
from edge_agent.engine.events import FileResult
from edge_agent.engine.limits import Limits
from edge_agent.transfer.encoding import Compression, Mode
from fleet_audio.source import RAW_REQUESTED


def test_a_given_level_is_forced() -> None:
    assert _compression(3).mode is Mode.FORCED
    assert _compression(-1).mode is Mode.FORCED


def _probed(compression: Compression, ceiling_s: float = 60.0) -> list[int]:
    """The levels with an encode rate, once there are some (the probe runs in its own thread)."""
    deadline = time.monotonic() + ceiling_s
    while time.monotonic() < deadline:
        rates, _ratios = compression.measured()
        if rates:
            return [level for level, rate in enumerate(rates) if rate > 0]
        time.sleep(0.01)
    raise AssertionError("the probe handed no rates on")


def test_no_level_is_the_model_on_measured_rates() -> None:
    compression = _compression(None)
    assert compression.mode is Mode.MODEL
    assert _probed(compression) == list(PROBE_LEVELS)  # the model scales the rest


def test_the_model_does_not_wait_for_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_probe(levels: object, **_: object) -> dict[int, float]:
        assert release.wait(60)
        return {5: 20e6}

    monkeypatch.setattr("fleet_audio.probe.measure_encode_rates", slow_probe)
    compression = _compression(None)  # returns while the probe still measures
    limits = Limits(compression_level=5)
    assert compression.measured() == ([], [])
    plan = compression.plan(limits, 2e6)
    assert plan is not None
    assert "encode rate not measured yet" in plan.reason  # the first file at the default level
    assert compression.start_file(limits, 2e6) == 5
    release.set()
    assert _probed(compression) == [5]
    plan = compression.plan(limits, 2e6)
    assert plan is not None
    assert "not measured yet" not in plan.reason


def test_a_file_sent_raw_says_whose_choice_raw_was() -> None:
    """Level -1 from ``--compression-level -1`` is the user's request; from the cost model it is its choice."""
    raw = FileResult("/d/a.wav", True, "p/a.wav", "", 10, 10, "raw", RAW_REQUESTED)
    assert _outcome_line(Path("/d/a.wav"), raw).endswith(f"(10 bytes, stored raw: {RAW_REQUESTED})")
    chosen = _outcome_line(Path("/d/a.wav"), raw, model_chose=True)
    assert chosen.endswith("(10 bytes, stored raw: the cost model chose raw for this CPU and link (-v shows why))")
    not_wav = FileResult("/d/b.wav", True, "p/b.wav", "", 6, 6, "raw", "not a WAV")
    assert _outcome_line(Path("/d/b.wav"), not_wav, model_chose=True).endswith("stored raw: not a WAV)")
