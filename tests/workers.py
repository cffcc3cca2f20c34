"""Which pytest-xdist worker this is, and a folder the parallel workers of one run share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
