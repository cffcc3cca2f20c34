"""``edgefleet upload``'s compression: the level given is forced; without one, the cost model on a quick probe."""

from __future__ import annotations

from edge_agent.cli_upload import PROBE_LEVELS, _compression
from edge_agent.transfer.encoding import Mode


def test_a_given_level_is_forced() -> None:
    assert _compression(3).mode is Mode.FORCED
    assert _compression(-1).mode is Mode.FORCED


def test_no_level_is_the_model_on_measured_rates() -> None:
    compression = _compression(None)
    assert compression.mode is Mode.MODEL
    rates, _ratios = compression.measured()
    assert len(rates) == 9
    assert [level for level, rate in enumerate(rates) if rate > 0] == list(PROBE_LEVELS)  # the model scales the rest
