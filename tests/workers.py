"""Which pytest-xdist worker this is, and a folder the parallel workers of one run share."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

WORKERS = 2  # parallel workers of the default run (docs/benchmarks.md "Test suite time": how it was chosen)
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
