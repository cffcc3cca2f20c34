"""Raw objects as hot Pis store them, their upload events, and a transcoder configured for the test's services."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minio import Minio
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controller.store.models import TranscodeJob, UploadEvent
from controller.transcoder.config import TranscoderConfig, parse_config
from edgefleet.localservices import SeaweedS3
from fleet_audio.rebuild import Rebuilt
from fleet_audio.restore import rebuild_object
from fleet_audio.source import object_key, open_source


def put_raw(client: Minio, bucket: str, prefix: str, agent: str, path: Path) -> str:
    """Store ``path`` raw (compression level -1) under the key the agent gives it, with the agent's metadata."""
    source = open_source(path, -1)
    try:
        key = object_key(prefix, agent, path, source)
        metadata = dict(source.metadata)
        with open(path, "rb") as f:
            client.put_object(bucket, key, f, source.original_size, source.content_type, metadata=metadata)  # type: ignore[arg-type]
    finally:
        source.close()
    return key


def record_raw_upload(engine: Engine, agent: str, key: str, path: Path, seq: int) -> None:
    data = path.read_bytes()
    event = UploadEvent(
        agent_id=agent,
        kind="upload_completed",
        file=path.name,
        key=key,
        original_bytes=len(data),
        stored_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        stored_as="raw",
        reason="raw upload requested (compression level -1)",
        at=datetime.now(UTC),
        seq=seq,
    )
    with Session(engine) as session:
        session.add(event)
        session.commit()


def config(database_url: str, s3: SeaweedS3, **settings: Any) -> TranscoderConfig:
    data: dict[str, Any] = {
        "database_url": database_url,
        "s3": {"endpoint": s3.endpoint, "access_key": s3.access_key, "secret_key": s3.secret_key, "bucket": s3.bucket},
        "part_size_mb": 5,
        "lease_s": 2,
        "poll_s": 0.2,
        **settings,
    }
    return parse_config(data)


def toml(cfg: TranscoderConfig) -> str:
    s3 = cfg.s3
    return "\n".join(
        [
            f'worker_id = "{cfg.worker_id}"',
            f'database_url = "{cfg.database_url}"',
            f"part_size_mb = {cfg.part_size_mb}",
            f"lease_s = {cfg.lease_s}",
            f"poll_s = {cfg.poll_s}",
            "[s3]",
            f'endpoint = "{s3.endpoint}"',
            f'access_key = "{s3.access_key}"',
            f'secret_key = "{s3.secret_key}"',
            f'bucket = "{s3.bucket}"',
            "",
        ]
    )


def jobs(engine: Engine) -> list[TranscodeJob]:
    with Session(engine) as session:
        return list(session.exec(select(TranscodeJob).order_by(TranscodeJob.id)))  # type: ignore[arg-type]


def restore_digest(client: Minio, bucket: str, key: str) -> Rebuilt:
    """A streaming restore of ``key`` (verified against its own size and sha256)."""
    return rebuild_object(client, bucket, key, lambda _data: None)


def digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def pending_uploads(client: Minio, bucket: str, prefix: str) -> list[str]:
    result = client._list_multipart_uploads(bucket, prefix=prefix)
    return [u.upload_id or "" for u in result.uploads]
