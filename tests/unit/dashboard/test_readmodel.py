from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.policy import PolicyConfig
from dashboard.readmodel import (
    Alert,
    TelemetryPoint,
    UploadTotals,
    compression_ratio,
    describe_audit,
    downsample,
    fleet_totals,
)
from tests.unit.dashboard.factories import NOW, assignment, row

LIMITS = PolicyConfig(soft_limit_c=70.0, hard_limit_c=80.0)


def test_fleet_totals() -> None:
    rows = [
        row("a", throughput_bps=100.0, backlog_files=2, backlog_bytes=20, temperature_c=71.0),
        row("b", throughput_bps=50.0, backlog_files=1, backlog_bytes=10),
        row("c", online=False, throughput_bps=999.0, backlog_files=4, backlog_bytes=40, temperature_c=90.0),
    ]
    alerts = [Alert("a", "hot", "a is hot"), Alert("c", "offline", "c is offline")]
    uploads = UploadTotals(files=3, original_bytes=1000, stored_bytes=600, failures=2, rejected=1)
    t = fleet_totals(rows, uploads, LIMITS, alerts)
    assert (t.agents, t.online, t.hot, t.alerts) == (3, 2, 1, 2)
    assert t.throughput_bps == 150.0
    assert (t.backlog_files, t.backlog_bytes) == (7, 70)
    assert (t.uploaded_today_files, t.uploaded_today_bytes, t.saved_today_bytes) == (3, 1000, 400)
    assert (t.failures_today, t.rejected_today) == (2, 1)


def test_saved_bytes_never_negative() -> None:
    # raw uploads of noise can store more than the original
    t = fleet_totals([], UploadTotals(files=1, original_bytes=100, stored_bytes=120), LIMITS)
    assert t.saved_today_bytes == 0


@pytest.mark.parametrize(
    ("original", "stored", "ratio"), [(100, 60, 0.6), (0, 10, None), (10, 0, None), (100, 101, 1.01)]
)
def test_upload_ratio(original: int, stored: int, ratio: float | None) -> None:
    assert compression_ratio(original, stored) == (None if ratio is None else pytest.approx(ratio))


def _points(n: int) -> list[TelemetryPoint]:
    return [
        TelemetryPoint(
            at=NOW + timedelta(seconds=i),
            temperature_c=float(i),
            throughput_bps=0.0,
            backlog_files=0,
            backlog_bytes=0,
            active_uploads=0,
            concurrency=None,
        )
        for i in range(n)
    ]


@given(n=st.integers(0, 400), most=st.integers(0, 100))
def test_downsample_keeps_order_bound_and_newest(n: int, most: int) -> None:
    points = _points(n)
    thin = downsample(points, most)
    assert len(thin) == min(n, most)
    assert [p.at for p in thin] == sorted(p.at for p in thin)
    assert len({p.at for p in thin}) == len(thin)
    if thin:
        assert thin[-1] == points[-1]
    if len(thin) >= 2:
        assert thin[0] == points[0]


@pytest.mark.parametrize(("applied", "current", "expected"), [(1, 1, True), (0, 1, False), (2, 1, True)])
def test_assignment_applied(applied: int, current: int, expected: bool) -> None:
    assert row(applied_version=applied, assignment=assignment(version=current)).assignment_applied is expected
    assert row(applied_version=applied, assignment=None).assignment_applied is False


def test_budget_overrides_read_as_words_in_the_audit() -> None:
    _, words = describe_audit("override.set", {"monthly_budget_bytes": 40 * 10**9, "daily_cap_bytes": 0})
    assert words == "monthly budget 37.3 GiB; no daily cap"
    _, words = describe_audit("override.set", {"paused": True, "monthly_budget_bytes": None, "daily_cap_bytes": None})
    assert words == "pause"  # not overridden (every form change sends it): nothing to say
