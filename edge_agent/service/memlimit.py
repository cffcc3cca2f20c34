"""The agent's own memory limit and resident memory, as it reports them in its birth message.

The limit is the lowest of: the memory limit of the agent's own cgroup and of every cgroup above it (cgroup v2
``memory.max``, cgroup v1 ``memory.limit_in_bytes``; the groups named by ``/proc/self/cgroup``), and the RAM.
"max", or a number at least as large as the RAM (cgroup v1 writes 2⁶³ rounded down to a page for "no limit"),
means no limit. Whatever cannot be read counts as no limit: the RAM is the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import psutil

log = logging.getLogger(__name__)

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
V2_FILE = "memory.max"
V1_FILE = "memory.limit_in_bytes"


def _ancestors(path: str) -> Iterator[PurePosixPath]:
    """``/a/b`` → ``a/b``, ``a``, ``.`` (relative, so they join under a mount point)."""
    relative = PurePosixPath(path.strip() or "/").relative_to("/")
    yield relative
    yield from relative.parents


def limit_files(proc_cgroup: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The limit files of the cgroups ``proc_cgroup`` (the text of ``/proc/self/cgroup``) names, and of their
    ancestors: v2 (``0::/path``, under ``root`` or ``root/unified``) and v1 (the ``memory`` controller)."""
    files: list[Path] = []
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            mounts = [(root, V2_FILE), (root / "unified", V2_FILE)]
        elif "memory" in controllers.split(","):
            mounts = [(root / "memory", V1_FILE)]
        else:
            continue
        for mount, name in mounts:
            files.extend(mount / group / name for group in _ancestors(path))
    return files


def parse_limit(text: str) -> int | None:
    """A limit file's value in bytes; ``None`` for "max" or anything unreadable."""
    value = text.strip()
    return int(value) if value.isdigit() else None


def read_memory_limit(total_ram: int, proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """(the memory limit in bytes, where it comes from): the lowest cgroup limit below ``total_ram``, else RAM."""
    try:
        files = limit_files(proc_cgroup.read_text(), root)
    except OSError:
        files = []
    best, source = total_ram, "RAM"
    for file in files:
        try:
            value = parse_limit(file.read_text())
        except OSError:
            continue
        if value is not None and 0 < value < best:
            best, source = value, str(file)
    return best, source


def rss_bytes() -> int:
    """This process's resident memory now."""
    return int(psutil.Process().memory_info().rss)
