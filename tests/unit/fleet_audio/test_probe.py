"""The encode-speed probe and the encoders that run side by side (CPU affinity, cgroup v1/v2 CPU quota)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from fleet_audio.probe import EncodeProbe, encode_cores, measure_encode_rates


def test_every_level_is_measured_in_bounded_time() -> None:
    started = time.monotonic()
    rates = measure_encode_rates(seconds_per_level=0.01)
    assert sorted(rates) == list(range(9))
    assert all(rate > 0 for rate in rates.values())
    assert time.monotonic() - started < 60  # at most 64 passes over 1 s of audio per level, whatever the box


def _cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    for name, text in files.items():
        path = tmp_path / "fs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "cgroup").write_text(proc)
    return tmp_path / "cgroup", tmp_path / "fs"


CPUS = float(len(os.sched_getaffinity(0)))


def test_the_probe_runs_beside_the_caller_and_hands_its_rates_on() -> None:
    release, handed = threading.Event(), threading.Event()
    got: list[dict[int, float]] = []

    def measure() -> dict[int, float]:
        assert release.wait(60)
        spin = time.thread_time() + 0.02  # some CPU of its own
        while time.thread_time() < spin:
            pass
        return {5: 3e6}

    def on_done(rates: dict[int, float]) -> None:
        got.append(rates)
        handed.set()

    probe = EncodeProbe(measure)
    probe.start(on_done)  # returns while the measurement waits
    assert probe.wait(0.01) is None
    assert got == []
    release.set()
    assert handed.wait(60)
    assert probe.wait(60) == {5: 3e6}
    assert got == [{5: 3e6}]
    assert probe.cpu_seconds() >= 0.02  # the probe's CPU, which the sender's busy figure leaves out
    with pytest.raises(RuntimeError, match="once"):
        probe.start(got.append)


def test_a_probe_that_fails_hands_on_nothing_measured() -> None:
    got: list[dict[int, float]] = []

    def broken() -> dict[int, float]:
        raise OSError("no libFLAC")

    probe = EncodeProbe(broken)
    probe.start(got.append)
    assert probe.wait(60) == {}
    assert got == [{}]


@pytest.mark.parametrize(
    ("name", "proc", "files", "expected"),
    [
        ("v2 quota of half a core", "0::/pi\n", {"pi/cpu.max": "50000 100000\n"}, 1.0),
        ("v2 no quota", "0::/pi\n", {"pi/cpu.max": "max 100000\n"}, CPUS),
        ("v1 quota of 2 cores", "4:cpu,cpuacct:/q\n", {"cpu,cpuacct/q/cpu.cfs_quota_us": "200000",
                                                        "cpu,cpuacct/q/cpu.cfs_period_us": "100000"}, min(CPUS, 2)),
        ("v1 no quota", "4:cpu,cpuacct:/q\n", {"cpu,cpuacct/q/cpu.cfs_quota_us": "-1",
                                               "cpu,cpuacct/q/cpu.cfs_period_us": "100000"}, CPUS),
        ("unreadable", "0::/gone\n", {}, CPUS),
        ("garbage", "0::/pi\n", {"pi/cpu.max": "lots often\n"}, CPUS),
    ],
)  # fmt: skip
def test_encode_cores(tmp_path: Path, name: str, proc: str, files: dict[str, str], expected: float) -> None:
    proc_cgroup, root = _cgroup(tmp_path, proc, files)
    assert encode_cores(proc_cgroup, root) == expected


def test_no_proc_file_means_the_cpus() -> None:
    assert encode_cores(Path("/nonexistent/cgroup"), Path("/nonexistent")) == CPUS


def test_a_python_thread_beside_the_probe_does_not_slow_what_it_measures() -> None:
    """The probe runs beside the upload's own threads (``EncodeProbe``), and every libFLAC frame calls back into
    Python: with a thread that wants the GIL beside it, the probe's wall clock measured GIL waits, not encoding
    (a 2-core cell of the matrix saw 3.5 MB/s of raw where 50 are normal, and sent everything raw; this test saw
    88 MB/s alone and 1.2 MB/s beside the thread). CPU seconds are the probe's own, give or take the GIL's
    hand-overs (2-3 × here)."""
    alone = measure_encode_rates([5], seconds_per_level=0.2, cpu_share=1.0)[5]
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            sum(range(1000))

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    try:
        beside = measure_encode_rates([5], seconds_per_level=0.2, cpu_share=1.0)[5]
    finally:
        stop.set()
        thread.join(60)
    assert beside > alone / 6, (alone, beside)
