"""Telemetry sampling of the real host: temperature, firmware throttle bits, CPU, memory, disk; capabilities.

Everything degrades to "unknown" (None / 0) rather than failing: a laptop has no ``vcgencmd``, a container
may have no thermal zone.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import psutil

from edge_agent.service.ports import Capabilities, HostSample

log = logging.getLogger(__name__)

THERMAL_GLOB = "thermal_zone*/temp"
THERMAL_ROOT = Path("/sys/class/thermal")
MODEL_FILE = Path("/proc/device-tree/model")


def read_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    """The hottest thermal zone (millidegrees in sysfs), else psutil's sensors, else None."""
    readings = []
    for zone in sorted(root.glob(THERMAL_GLOB)):
        try:
            readings.append(int(zone.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    if not readings:
        sensors = getattr(psutil, "sensors_temperatures", None)
        try:
            groups = sensors() if sensors else {}
        except (OSError, RuntimeError):
            groups = {}
        readings = [t.current for entries in groups.values() for t in entries if t.current is not None]
    plausible = [r for r in readings if -60.0 <= r <= 150.0]
    return max(plausible) if plausible else None


def parse_throttled(output: str) -> int:
    """``throttled=0x50005`` -> 0x50005; anything else -> 0."""
    _, _, value = output.strip().partition("=")
    try:
        return int(value, 16)
    except ValueError:
        return 0


def read_throttled(vcgencmd: str | None) -> int:
    if vcgencmd is None:
        return 0
    try:
        done = subprocess.run([vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("vcgencmd failed: %s", exc)
        return 0
    return parse_throttled(done.stdout)


def read_model(model_file: Path = MODEL_FILE) -> str:
    try:
        return model_file.read_bytes().rstrip(b"\x00").decode("utf-8", "replace").strip() or platform.machine()
    except OSError:
        return f"{platform.system()} {platform.machine()}".strip()


def _probe_audio(seconds_of_audio: float, sample_rate: int) -> np.ndarray:
    """Noise-like (hard) mono audio: brown-ish background plus white noise, like a field recording, not a sine."""
    rng = np.random.default_rng(1)
    n = int(seconds_of_audio * sample_rate)
    noise = rng.normal(0.0, 1.0, n)
    signal = np.cumsum(noise) * 40.0 + noise * 900.0
    signal -= np.linspace(signal[0], signal[-1], n)
    return np.clip(signal, -32768, 32767).astype(np.int16).reshape(-1, 1)


def _encode_rate(samples: np.ndarray, sample_rate: int, level: int, min_seconds: float) -> float:
    """WAV bytes per second one libFLAC encoder reaches at ``level``, wall clock, over at least ``min_seconds``
    (so a CPU quota's period is in it) and at most 64 passes over ``samples`` (bounded time and memory)."""
    import pyflac

    encoder = pyflac.StreamEncoder(sample_rate, lambda buf, nbytes, _ns, _fr: None, compression_level=level)
    fed, start = 0, time.perf_counter()
    for _ in range(64):
        encoder.process(samples)
        fed += samples.nbytes
        if time.perf_counter() - start >= min_seconds:
            break
    encoder.finish()
    return fed / max(time.perf_counter() - start, 1e-6)


def measure_encode_rates(
    levels: Iterable[int] = range(9), seconds_per_level: float = 0.1, sample_rate: int = 48_000
) -> dict[int, float]:
    """The start-up probe: WAV bytes/s of one encoder at each FLAC level (edge_agent.engine.encoderate)."""
    samples = _probe_audio(1.0, sample_rate)
    return {level: _encode_rate(samples, sample_rate, level, seconds_per_level) for level in levels}


def measure_flac_encode_bps(seconds_of_audio: float = 1.0, sample_rate: int = 48_000, level: int = 5) -> float:
    """WAV bytes per second that libFLAC encodes here at ``level``, from a short run on noise-like audio."""
    return _encode_rate(_probe_audio(seconds_of_audio, sample_rate), sample_rate, level, 0.0)


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


class LocalHost:
    """``HostProbe`` for the machine we run on; disk numbers are those of the spool folder's file system."""

    def __init__(self, spool_dir: Path, probe_seconds_per_level: float = 0.1) -> None:
        self.spool_dir = spool_dir
        self.probe_seconds_per_level = probe_seconds_per_level
        self.vcgencmd = shutil.which("vcgencmd")
        psutil.cpu_percent(None)  # prime: the next call reports the load since now

    def sample(self) -> HostSample:
        try:
            free = shutil.disk_usage(self.spool_dir).free
        except OSError:
            free = 0
        return HostSample(
            temperature_c=read_temperature_c(),
            throttled=read_throttled(self.vcgencmd),
            cpu_percent=psutil.cpu_percent(None),
            mem_available_bytes=psutil.virtual_memory().available,
            disk_free_bytes=free,
        )

    def capabilities(self) -> Capabilities:
        try:
            disk = shutil.disk_usage(self.spool_dir).total
        except OSError:
            disk = 0
        try:
            rates = measure_encode_rates(seconds_per_level=self.probe_seconds_per_level)
        except Exception as exc:  # a broken codec must not stop the agent from reporting in
            log.warning("cannot measure FLAC encode speed: %s", exc)
            rates = {}
        return Capabilities(
            model=read_model(),
            cores=os.cpu_count() or 1,
            ram_bytes=psutil.virtual_memory().total,
            disk_bytes=disk,
            flac_encode_bps=rates.get(5, 0.0),
            encode_bps_by_level=rates,
            encode_cores=encode_cores(),
        )
