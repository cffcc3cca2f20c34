"""Helpers shared by the transfer integration tests and benchmarks (plain module, importable anywhere)."""

from __future__ import annotations

import threading
from pathlib import Path

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.limits import MiB
from edgefleet.localservices import SeaweedS3
from fleet_base.s3settings import S3Settings
from tests.faultproxy import FaultProxy

PART = 5 * MiB


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
