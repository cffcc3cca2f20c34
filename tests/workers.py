"""Parallel test workers (pytest-xdist): how many, which tests run together, which worker this is, and a folder the
workers of one run share."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

# Parallel workers of the default run: the cores of the CI machine. Two whole runs (1098 s and 1049 s against
# 1904 s in one process) had no parallel-safety failure (docs/benchmarks.md "Test suite time").
# -n 0 runs in one process; PYTEST_XDIST_AUTO_NUM_WORKERS=N in N.
WORKERS = 2
_MEASURING = re.compile(r"(?<!not )\b(bench|slow)\b")


def workers_for(markexpr: str, args: Sequence[str], env: Mapping[str, str]) -> int:
    """How many workers ``-n auto`` starts: ``WORKERS``; none (one process, as without xdist) for benchmarks and
    slow scenarios (``-m bench``, ``-m slow``: they measure, or load, the machine) and for a single file or test
    named on the command line; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it."""
    if env.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(env["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    if _MEASURING.search(markexpr):
        return 0
    if len(args) == 1 and ("::" in args[0] or args[0].endswith(".py")):
        return 0
    return WORKERS


def worker_id() -> str:
    """This pytest-xdist worker's name (``gw0``, ``gw1``...), ``main`` in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def shared_path(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder shared by the parallel workers of this run (``.../pytest-N/NAME``; this session's own folder in a
    run without workers): build in it under ``edgefleet.localservices.process.exclusive``."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if worker_id() != "main" else base) / name
    folder.mkdir(exist_ok=True)
    return folder


ONE_WORKER_DIRS = ("tests/integration/ansible/",)  # one session deployment, 97-233 s to build: one worker builds it
_MODULE_FIXTURE = re.compile(r"""scope=["'](module|package)["']""")


class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist.scheduler is untyped here
    """What xdist's ``--dist loadgroup`` does with ``xdist_group`` marks, on node ids alone: the marks do not reach
    the scheduler with pytest 9.2 and xdist 3.8 (pytest-dev/pytest-xdist#1386). One work unit is every test under
    a folder of ``ONE_WORKER_DIRS``, or every test of a module that defines a module-scoped fixture (built once,
    by one worker), or else one test. Units go out in collection order: browser, e2e and integration tests (the
    slow ones) first, the many short unit tests last to even out the end."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        config.option.loadscopereorder = False  # collection order, not the largest unit first
        super().__init__(config, log)
        self.root = config.rootpath

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        for folder in ONE_WORKER_DIRS:
            if module.startswith(folder):
                return folder
        return module if _defines_module_fixture(self.root / module) else nodeid


@functools.cache
def _defines_module_fixture(path: Path) -> bool:
    try:
        return bool(_MODULE_FIXTURE.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False
