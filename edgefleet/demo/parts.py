"""How to start each part of the system as a child ``edgefleet`` process, and the ports and URLs it uses."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgefleet.localservices.process import port_is_free

PYTHON_CLI = [sys.executable, "-m", "edgefleet.cli"]
#: the source checkout the demo runs from, if any
CHECKOUT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """Children import the same code as the demo, whatever their working folder (the data folder)."""
    if not (CHECKOUT / "pyproject.toml").exists():
        return {}
    current = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), current) if p)}


@dataclass(frozen=True)
class Part:
    name: str  # the sub-command

    def argv(self, *args: str) -> list[str]:
        return [*PYTHON_CLI, self.name, *args]


CONTROLLER = Part("controller")
DASHBOARD = Part("dashboard")
AGENT = Part("agent")
SIMULATE = Part("simulate")


def reuse_port(stored: int, fallback: int) -> int:
    """The port of the previous run if it is still free (stable URLs across runs), else ``fallback``."""
    return stored if stored and port_is_free(stored) else fallback


def ports_free(ports: Iterable[int], grpc_offset: int = 0) -> bool:
    """All stored ports (and their gRPC twins) are free: the previous run's layout can be reused."""
    stored = list(ports)
    return bool(stored) and all(port_is_free(p) and (not grpc_offset or port_is_free(p + grpc_offset)) for p in stored)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(200 <= response.status < 400)
