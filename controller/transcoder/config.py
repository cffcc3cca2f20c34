"""``transcoder.toml``: the transcoder service's settings (docs/transcoder.md, "Configuration"). Environment
variables override the file like the controller's: ``EDGEFLEET_DATABASE_URL``, ``EDGEFLEET_S3_*``."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from controller.config import MetricsSection
from controller.store.database import DEFAULT_DATABASE_URL
from fleet_base.configfile import DATABASE_ENV, S3_ENV, S3Section, Section, parse_model, read_toml

MiB = 1024 * 1024


class TranscoderConfig(Section):
    #: this worker's name in leases and heartbeats; empty = ``<host>-<pid>``
    worker_id: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.-]*$")
    database_url: str = DEFAULT_DATABASE_URL
    database_migrate: bool = False
    s3: S3Section
    #: the FLAC level of the objects it writes (what the agents use by default: 5)
    compression_level: int = Field(default=5, ge=0, le=8)
    #: parts of the multipart upload (part 1, which carries the FLAC header, is this plus the header)
    part_size_mb: int = Field(default=8, ge=5, le=512)
    #: a job's lease; renewed every third of it while the worker is busy, taken over once expired
    lease_s: float = Field(default=120.0, ge=2, le=3600)
    #: how often an idle worker looks for work and new raw uploads
    poll_s: float = Field(default=10.0, gt=0, le=600)
    #: a job that failed this many times stays 'failed' (an operator requeues it)
    max_attempts: int = Field(default=5, ge=1, le=100)
    #: a worker whose heartbeat is older than this is not counted as capacity
    alive_after_s: float = Field(default=120.0, gt=0)
    metrics: MetricsSection = Field(default_factory=MetricsSection)

    @property
    def part_size(self) -> int:
        return self.part_size_mb * MiB

    def worker_name(self) -> str:
        return self.worker_id or f"{socket.gethostname()[:80]}-{os.getpid()}"


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> TranscoderConfig:
    return parse_model(TranscoderConfig, data, env or {}, {**DATABASE_ENV, **S3_ENV}, "transcoder configuration")


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> TranscoderConfig:
    data = read_toml(path) if path is not None else {}
    return parse_config(data, os.environ if env is None else env)
