"""The agent's sample of its own process: CPU and resident memory from psutil, ``None`` when psutil cannot tell."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from edge_agent.service.host import LocalHost


def test_the_sample_has_this_process_cpu_and_rss(tmp_path: Path) -> None:
    host = LocalHost(tmp_path)
    sum(i * i for i in range(200_000))  # some CPU of our own
    sample = host.sample()
    assert sample.process_rss_bytes is not None
    assert sample.process_rss_bytes == pytest.approx(psutil.Process().memory_info().rss, rel=0.5)
    assert sample.process_cpu_percent is not None
    assert sample.process_cpu_percent >= 0


def test_a_process_psutil_cannot_read_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = LocalHost(tmp_path)

    def gone(*_a: object) -> float:
        raise psutil.NoSuchProcess(0)

    monkeypatch.setattr(host.process, "cpu_percent", gone)
    sample = host.sample()
    assert (sample.process_cpu_percent, sample.process_rss_bytes) == (None, None)
