"""The set-up both transcoder tests share: raw objects as a hot Pi stores them and their upload events."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy.engine import Engine

from edgefleet.localservices import SeaweedS3
from tests.integration.controller.transcoder.helpers import put_raw, record_raw_upload


@dataclass(frozen=True)
class Staged:
    """Raw objects in the bucket under a prefix of their own, each with its ``upload_completed`` event."""

    client: Minio
    bucket: str
    prefix: str
    keys: dict[str, str]  # the caller's name of each file → its object key


StageRaw = Callable[[Engine, Mapping[str, Path]], Staged]


@pytest.fixture
def stage_raw(s3_server: SeaweedS3) -> StageRaw:
    """``stage_raw(engine, files)``: each file stored raw by agent ``pi-hot`` (in order, events numbered so)."""

    def stage(engine: Engine, files: Mapping[str, Path]) -> Staged:
        client, bucket, prefix = s3_server.client(), s3_server.bucket, f"tc-{secrets.token_hex(4)}"
        keys = {name: put_raw(client, bucket, prefix, "pi-hot", path) for name, path in files.items()}
        for seq, (name, key) in enumerate(keys.items()):
            record_raw_upload(engine, "pi-hot", key, files[name], seq)
        return Staged(client, bucket, prefix, keys)

    return stage
