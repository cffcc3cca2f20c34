"""The central host's counters from psutil (``HostSampler.read``): CPU, memory, disk I/O of every disk, free
space of the file system holding ``disk_path`` (the database's or data directory), network bytes of every
interface but loopback. ``psutil`` is a parameter so the tests can give a fake."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from controller.central.readings import HostCounters


class HostSampler:
    def __init__(
        self, disk_path: Path, *, ps: ModuleType | Any = psutil, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.disk_path = disk_path
        self.ps = ps
        self.clock = clock
        self.ps.cpu_percent(interval=None)  # the first call starts psutil's CPU accounting (it returns 0.0)

    def read(self) -> HostCounters:
        memory = self.ps.virtual_memory()
        disk = self.ps.disk_usage(str(self.disk_path))
        io = self.ps.disk_io_counters(perdisk=False)  # None where the kernel has no disk statistics
        nets = self.ps.net_io_counters(pernic=True)
        sent = sum(c.bytes_sent for name, c in nets.items() if name != "lo")
        recv = sum(c.bytes_recv for name, c in nets.items() if name != "lo")
        return HostCounters(
            at=self.clock(),
            cpu_percent=float(self.ps.cpu_percent(interval=None)),
            mem_total_bytes=int(memory.total),
            mem_available_bytes=int(memory.available),
            disk_read_bytes=None if io is None else int(io.read_bytes),
            disk_write_bytes=None if io is None else int(io.write_bytes),
            net_sent_bytes=int(sent),
            net_recv_bytes=int(recv),
            disk_free_bytes=int(disk.free),
            disk_total_bytes=int(disk.total),
        )
