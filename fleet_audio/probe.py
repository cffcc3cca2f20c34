"""What encoding can do on this machine: a short FLAC speed probe per level, and how many encoders run side by side.

The probe encodes one second of noise-like (hard) mono audio, again and again for a short wall-clock time per
level (bounded: at most 64 passes over 96 kB), so it costs well under a second per level and a CPU quota's
period shows in it. Its speeds seed the agent's encode-rate estimate (``edge_agent.engine.encoderate``), which
real encodes then refine; its compression ratios are not used (synthetic audio does not compress like
recordings).

``EncodeProbe`` runs a measurement in a background thread, so ``edgefleet upload`` starts its first file
without waiting for it (issue 10, the link-bound run: the probe was ~0.3 s of its wall time).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger("edgefleet.probe")


def _probe_audio(seconds_of_audio: float, sample_rate: int) -> np.ndarray:
    """Noise-like (hard) mono audio: brown-ish background plus white noise, like a field recording, not a sine."""
    rng = np.random.default_rng(1)
    n = int(seconds_of_audio * sample_rate)
    noise = rng.normal(0.0, 1.0, n)
    signal = np.cumsum(noise) * 40.0 + noise * 900.0
    signal -= np.linspace(signal[0], signal[-1], n)
    return np.clip(signal, -32768, 32767).astype(np.int16).reshape(-1, 1)


def _encode_rate(samples: np.ndarray, sample_rate: int, level: int, min_seconds: float, share: float) -> float:
    """WAV bytes per second one libFLAC encoder reaches at ``level``, over at least ``min_seconds`` of wall clock
    and at most 64 passes over ``samples`` (bounded time and memory): WAV bytes per CPU second of this thread, times
    ``share`` (the share of one core a thread may use under a CPU quota; 1 without one).

    CPU seconds, not wall seconds: every libFLAC frame calls back into Python, so beside any thread that wants the
    GIL (the upload the probe runs beside) the wall clock measures GIL waits (a test saw 88 MB/s alone and 1.2 MB/s
    beside a busy Python thread; a 2-core matrix cell sent everything raw on such a probe). Under a quota a probe
    shorter than the quota's period runs either unthrottled or in a throttled gap (issue 10, run 3), and CPU time
    times the share does neither. A machine loaded by other programs does not show here; the real encodes that
    refine these rates measure wall time (``edge_agent.engine.encoderate``), and the cost model scores plans with
    70 % of them."""
    import pyflac

    encoder = pyflac.StreamEncoder(sample_rate, lambda buf, nbytes, _ns, _fr: None, compression_level=level)
    fed, start, cpu = 0, time.perf_counter(), time.thread_time()
    for _ in range(64):
        encoder.process(samples)
        fed += samples.nbytes
        if time.perf_counter() - start >= min_seconds:
            break
    encoder.finish()
    return fed / max(time.thread_time() - cpu, 1e-6) * min(1.0, share)


def measure_encode_rates(
    levels: Iterable[int] = range(9),
    seconds_per_level: float = 0.1,
    sample_rate: int = 48_000,
    cpu_share: float | None = None,
) -> dict[int, float]:
    """The start-up probe: WAV bytes/s of one encoder at each FLAC level (edge_agent.engine.encoderate).
    ``cpu_share``: the share of one core this process may use (None: from its cgroup's CPU quota, 1 without)."""
    samples = _probe_audio(1.0, sample_rate)
    share = quota_share() if cpu_share is None else max(1e-3, min(1.0, cpu_share))
    return {level: _encode_rate(samples, sample_rate, level, seconds_per_level, share) for level in levels}


class EncodeProbe:
    """``measure`` (e.g. :func:`measure_encode_rates` with its arguments bound) in a daemon thread: ``start`` returns
    at once, and ``on_done`` gets the rates from that thread when they are measured (``{}`` when the measurement
    failed), so it must be thread-safe. ``cpu_seconds`` is what the thread has used so far: CPU that is the
    probe's, not the sender's (``edge_agent.transfer.encoding.CpuBusy``)."""

    def __init__(self, measure: Callable[[], dict[int, float]]) -> None:
        self._measure = measure
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._rates: dict[int, float] | None = None
        self._cpu = 0.0

    def start(self, on_done: Callable[[dict[int, float]], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("the probe runs once")
        self._thread = threading.Thread(target=self._run, args=(on_done,), name="encode-probe", daemon=True)
        self._thread.start()

    def _run(self, on_done: Callable[[dict[int, float]], None]) -> None:
        try:
            rates = self._measure()
        except Exception:  # no probe is no reason to stop an upload: real encodes measure the rates too
            log.warning("encode-speed probe failed; the model waits for real encodes", exc_info=True)
            rates = {}
        self._cpu = time.thread_time()
        self._rates = rates
        try:
            on_done(rates)
        except Exception:
            log.exception("encode-speed probe: handing on its rates failed")
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> dict[int, float] | None:
        """The measured rates once handed on; None if that has not happened within ``timeout``."""
        self._done.wait(timeout)
        return self._rates if self._done.is_set() else None

    def cpu_seconds(self) -> float:
        """CPU seconds the probe's thread has used (0 before it starts)."""
        thread = self._thread
        if thread is None or thread.ident is None or self._rates is not None:
            return self._cpu
        try:  # still measuring: the thread's own CPU clock (Linux)
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (AttributeError, OSError):  # no such clock here, or the thread has just ended
            return self._cpu


def quota_share(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> float:
    """The share of ONE core a thread of this process can get under its cgroup's CPU quota (1 without one)."""
    quota = _cgroup_cpu_quota(proc_cgroup, root)
    return 1.0 if quota is None or quota <= 0 else max(1e-3, min(1.0, quota))


def _cgroup_cpu_quota(proc_cgroup: Path, root: Path) -> float | None:
    """Cores the process's cgroup may use (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            quota, _, period = _read(root / path.lstrip("/") / "cpu.max").partition(" ")
        elif "cpu" in controllers.split(","):
            base = root / controllers / path.lstrip("/")
            quota, period = _read(base / "cpu.cfs_quota_us"), _read(base / "cpu.cfs_period_us")
        else:
            continue
        try:
            if quota not in ("", "max", "-1") and float(period) > 0:
                return float(quota) / float(period)
        except ValueError:
            continue
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def encode_cores(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> float:
    """Encoders that run side by side at the probed speed: the CPUs we may run on, fewer under a CPU quota; at
    least 1 (a quota below one core is already in the probe's wall-clock speed)."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cpus = float(os.cpu_count() or 1)
    quota = _cgroup_cpu_quota(proc_cgroup, root)
    return max(1.0, min(cpus, quota) if quota is not None else cpus)
