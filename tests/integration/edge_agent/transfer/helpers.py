"""Helpers shared by the transfer integration tests and benchmarks (plain module, importable anywhere)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.limits import MiB
from edgefleet.localservices import SeaweedS3
from fleet_base.s3settings import S3Settings
from tests.faultproxy import FaultProxy

PART = 5 * MiB
REPO = Path(__file__).resolve().parents[4]


def upload_argv(*args: str) -> list[str]:
    """``edgefleet upload ARGS`` as a command line (run it from the clone: ``cwd=REPO``)."""
    return [sys.executable, "-m", "edgefleet.cli", "upload", *args]


def run_upload_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``timeout`` is a ceiling for a stuck run, never something a working run comes near."""
    return subprocess.run(upload_argv(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def settings_via(server: SeaweedS3, proxy: FaultProxy | None = None) -> S3Settings:
    endpoint = f"http://{proxy.address}" if proxy else server.endpoint
    return S3Settings(endpoint, server.access_key, server.secret_key, server.bucket)


class Recorder:
    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.lock = threading.Lock()

    def __call__(self, ev: EngineEvent) -> None:
        with self.lock:
            self.events.append(ev)

    def kinds(self, file: Path | None = None) -> list[str]:
        return [e.kind.value for e in self.events if file is None or e.file == str(file)]
