"""The stale multipart janitor against the real S3 server (SeaweedFS), paginating through many uploads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from controller.service.janitor import Janitor, list_pending
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch
from edgefleet.localservices import SeaweedS3
from fleet_protocol.messages import Event, State
from fleet_protocol.vocabulary import EventKind

pytestmark = pytest.mark.integration


def test_janitor_aborts_stale_uploads_except_active_ones(s3_server: SeaweedS3, tmp_path: Path) -> None:
    client = s3_server.client()
    prefix = f"janitor-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}a.flac", f"{prefix}a.flac", f"{prefix}b.flac", f"{prefix}c.flac", f"{prefix}active.flac"]
    ids = [client._create_multipart_upload(s3_server.bucket, key, {}) for key in keys]
    listed = list(list_pending(client, s3_server.bucket, prefix=prefix))
    assert sorted((u.key, u.upload_id) for u in listed) == sorted(zip(keys, ids, strict=True))
    assert all(u.initiated is not None for u in listed)

    engine = repo.make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    repo.create_all(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        write_batch(
            session,
            IngestBatch(
                states=[(State(agent_id="pi-1", seq=0, state="online"), now)],  # type: ignore[arg-type]
                events=[
                    (
                        Event(
                            agent_id="pi-1",
                            seq=1,
                            kind=EventKind.UPLOAD_STARTED,
                            file="active.wav",
                            key=f"{prefix}active.flac",
                        ),
                        now,
                    )
                ],
            ),
        )
        young = Janitor(client, s3_server.bucket, timedelta(hours=24), prefix=prefix, page_size=2)
        assert young.run(session, now) == []
        janitor = Janitor(client, s3_server.bucket, timedelta(0), prefix=prefix, page_size=2)
        aborted = janitor.run(session, now + timedelta(seconds=5))
    assert sorted(u.key for u in aborted) == sorted(keys[:4])
    assert janitor.aborted == 4
    remaining = list(list_pending(client, s3_server.bucket, prefix=prefix))
    assert [u.key for u in remaining] == [f"{prefix}active.flac"]
    client._abort_multipart_upload(s3_server.bucket, remaining[0].key, remaining[0].upload_id)
