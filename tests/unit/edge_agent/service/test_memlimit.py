"""The agent's memory limit from its cgroups (v1 and v2, and every group above its own), else its RAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.service.memlimit import limit_files, parse_limit, read_memory_limit

GiB = 2**30
V1_ONLY = "4:memory:/system.slice/edgefleet-agent.service\n1:cpu:/\n"
HYBRID = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n"
V2_ONLY = "0::/system.slice/edgefleet-agent.service\n"


def put(root: Path, relative: str, value: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")


def limit(tmp_path: Path, proc: str) -> tuple[int, str]:
    (tmp_path / "cgroup").write_text(proc)
    return read_memory_limit(4 * GiB, tmp_path / "cgroup", tmp_path / "fs")


def test_v2_the_services_memory_max(tmp_path: Path) -> None:
    put(tmp_path / "fs", "system.slice/edgefleet-agent.service/memory.max", str(256 * 2**20))
    put(tmp_path / "fs", "system.slice/memory.max", "max")
    assert limit(tmp_path, V2_ONLY) == (
        256 * 2**20,
        str(tmp_path / "fs/system.slice/edgefleet-agent.service/memory.max"),
    )


def test_v1_the_lowest_of_the_group_and_its_parents(tmp_path: Path) -> None:
    fs = tmp_path / "fs" / "memory"
    put(fs, "system.slice/edgefleet-agent.service/memory.limit_in_bytes", "9223372036854771712")  # no limit
    put(fs, "system.slice/memory.limit_in_bytes", str(512 * 2**20))
    put(fs, "memory.limit_in_bytes", "9223372036854771712")
    assert limit(tmp_path, V1_ONLY)[0] == 512 * 2**20


def test_hybrid_reads_the_v1_memory_controller(tmp_path: Path) -> None:
    put(tmp_path / "fs" / "memory", "process_api/abc/memory.limit_in_bytes", str(GiB))
    put(tmp_path / "fs" / "unified", "cgroup.procs", "")  # the v2 hierarchy without a memory controller
    assert limit(tmp_path, HYBRID)[0] == GiB


@pytest.mark.parametrize("proc", [V1_ONLY, V2_ONLY, HYBRID, "", "garbage\n::\n"])
def test_nothing_readable_means_the_ram(tmp_path: Path, proc: str) -> None:
    assert limit(tmp_path, proc) == (4 * GiB, "RAM")


def test_no_proc_file_means_the_ram(tmp_path: Path) -> None:
    assert read_memory_limit(GiB, tmp_path / "missing", tmp_path) == (GiB, "RAM")


@pytest.mark.parametrize(("text", "value"), [("max\n", None), ("268435456\n", 268435456), ("", None), ("-1", None)])
def test_parse_limit(text: str, value: int | None) -> None:
    assert parse_limit(text) == value


def test_limit_files_walk_up_to_the_root() -> None:
    files = [str(f) for f in limit_files("0::/a/b\n", Path("/r"))]
    assert files[:3] == ["/r/a/b/memory.max", "/r/a/memory.max", "/r/memory.max"]
