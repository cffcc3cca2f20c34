"""Helpers shared by the transfer integration tests and benchmarks (plain module, importable anywhere)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.limits import MiB
from edge_agent.s3settings import S3Settings
from edgefleet.localservices import SeaweedS3
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


@contextlib.contextmanager
def weed_patched(prefix: Sequence[str] = ()) -> Iterator[None]:
    """Stopgap (reported to the lead): ``weed mini`` also listens on FIXED ports 9101 (Lance) and 8181 (Iceberg),
    so two servers at once (session + factory, or another test run) collide: disable both listeners.
    ``prefix`` runs weed under another command (e.g. ``ip netns exec NS`` for the benchmarks)."""
    from edgefleet.localservices import seaweed

    original = getattr(seaweed, "start_process")  # noqa: B009

    def start(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        if "mini" in argv:
            argv = [*prefix, *argv, "-s3.port.lance=0", "-s3.port.iceberg=0"]
        return original(argv, *args, **kwargs)

    setattr(seaweed, "start_process", start)  # noqa: B010
    try:
        yield
    finally:
        setattr(seaweed, "start_process", original)  # noqa: B010
