"""Telemetry sampling of the real host: temperature, firmware throttle bits, CPU, memory, disk, and the agent
process's own CPU and resident memory; capabilities.

Everything degrades to "unknown" (None / 0) rather than failing: a laptop has no ``vcgencmd``, a container
may have no thermal zone.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil

from edge_agent.service.memlimit import read_memory_limit, rss_bytes
from edge_agent.service.ports import Capabilities, HostSample
from fleet_audio.probe import encode_cores, measure_encode_rates

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


class LocalHost:
    """``HostProbe`` for the machine we run on; disk numbers are those of the spool folder's file system."""

    def __init__(self, spool_dir: Path, probe_seconds_per_level: float = 0.1) -> None:
        self.spool_dir = spool_dir
        self.probe_seconds_per_level = probe_seconds_per_level
        self.vcgencmd = shutil.which("vcgencmd")
        self.process = psutil.Process()
        psutil.cpu_percent(None)  # prime: the next call reports the load since now
        self.process.cpu_percent(None)  # the same for this process

    def sample(self) -> HostSample:
        try:
            free = shutil.disk_usage(self.spool_dir).free
        except OSError:
            free = 0
        own = self._own()
        return HostSample(
            temperature_c=read_temperature_c(),
            throttled=read_throttled(self.vcgencmd),
            cpu_percent=psutil.cpu_percent(None),
            mem_available_bytes=psutil.virtual_memory().available,
            disk_free_bytes=free,
            process_cpu_percent=own[0],
            process_rss_bytes=own[1],
        )

    def _own(self) -> tuple[float | None, int | None]:
        """This process's CPU % since the last sample and its resident bytes (None where psutil cannot tell)."""
        try:
            with self.process.oneshot():
                return self.process.cpu_percent(None), self.process.memory_info().rss
        except (psutil.Error, OSError) as exc:
            log.debug("cannot read this process's own use: %s", exc)
            return None, None

    def capabilities(self) -> Capabilities:
        """What the agent is; call it once the agent's modules are loaded (its baseline RSS is measured here)."""
        try:
            disk = shutil.disk_usage(self.spool_dir).total
        except OSError:
            disk = 0
        try:
            rates = measure_encode_rates(seconds_per_level=self.probe_seconds_per_level)
        except Exception as exc:  # a broken codec must not stop the agent from reporting in
            log.warning("cannot measure FLAC encode speed: %s", exc)
            rates = {}
        ram = psutil.virtual_memory().total
        limit, source = read_memory_limit(ram)
        baseline = rss_bytes()  # after the codec's measurement: what the agent holds without part buffers
        log.info("memory limit %.0f MiB (%s), baseline RSS %.0f MiB", limit / 2**20, source, baseline / 2**20)
        return Capabilities(
            model=read_model(),
            cores=os.cpu_count() or 1,
            ram_bytes=ram,
            disk_bytes=disk,
            memory_limit_bytes=limit,
            baseline_rss_bytes=baseline,
            flac_encode_bps=rates.get(5, 0.0),
            encode_bps_by_level=rates,
            encode_cores=encode_cores(),
        )
