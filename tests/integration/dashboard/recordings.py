"""Recordings for the media tests: objects made by the codec (as the agent uploads them) in a real S3 server, and
their catalog rows as the controller writes them."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controller.store.models import Recording
from edgefleet.localservices import SeaweedS3
from fleet_audio.source import object_key, open_source
from tests.unit.fleet_audio.flactool import object_bytes


def s3_section(s3: SeaweedS3, cache_dir: Path, **extra: Any) -> dict[str, Any]:
    return {**s3.settings().as_dict(), "spectrogram_cache_dir": str(cache_dir), **extra}


def put_object(s3: SeaweedS3, key: str, data: bytes, metadata: dict[str, str], content_type: str = "") -> None:
    s3.client().put_object(
        s3.bucket, key, io.BytesIO(data), len(data), content_type=content_type or "application/octet-stream",
        metadata=dict(metadata.items()),
    )  # fmt: skip


def encode(path: Path, level: int = 5, agent_id: str = "pi-1") -> tuple[str, bytes, dict[str, str], str]:
    """(key, object bytes, S3 metadata, codec) of the WAV at ``path`` as the agent would upload it."""
    source = open_source(path, level)
    try:
        return object_key("it-media", agent_id, path, source), object_bytes(source), dict(source.metadata), source.kind
    finally:
        source.close()


def catalog(engine: Engine, key: str, original: Path | None, codec: str, stored: int, **facts: Any) -> int:
    """A catalog row for ``key`` (facts of the original file at ``original``, if any); its id."""
    import hashlib

    data = original.read_bytes() if original else b""
    facts.setdefault("original_bytes", len(data))
    row = Recording(
        key=key,
        agent_id=facts.pop("agent_id", "pi-1"),
        site="garden",
        file=original.name if original else key.rsplit("/", 1)[-1],
        uploaded_at=datetime.now(UTC),
        stored_bytes=stored,
        sha256=hashlib.sha256(data).hexdigest() if original else "",
        codec=codec,
        status="cataloged",
        **facts,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def store(s3: SeaweedS3, engine: Engine, path: Path, level: int = 5, **facts: Any) -> tuple[int, str, bytes]:
    """Upload the recording at ``path`` and catalog it: (id, key, object bytes)."""
    key, data, metadata, codec = encode(path, level)
    put_object(s3, key, data, metadata)
    return catalog(engine, key, path, codec, len(data), **facts), key, data
