"""Stale multipart uploads: abort those older than N hours that no agent reports as active.

MinIO has no lifecycle rule for incomplete uploads (DESIGN §3/§4), so the controller cleans up.
``stale_uploads`` is the pure rule; ``Janitor`` lists (paginated) and aborts through the minio client.
minio 7.2 never fills ``next_upload_id_marker``, so pages continue from the last upload id seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from controller.store.engine import as_utc
from controller.store.ingest import AGENT, EVENT
from fleet_protocol import EventKind

log = logging.getLogger(__name__)

STARTS = (EventKind.UPLOAD_STARTED.value, EventKind.UPLOAD_RESUMED.value)
ENDS = (EventKind.UPLOAD_COMPLETED.value, EventKind.UPLOAD_FAILED.value)


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime | None


def stale_uploads(
    uploads: Iterable[PendingUpload], active_keys: set[str], now: datetime, max_age: timedelta
) -> list[PendingUpload]:
    """Uploads started before ``now - max_age`` whose key no agent is working on."""
    cutoff = now - max_age
    return [u for u in uploads if u.initiated is not None and u.initiated < cutoff and u.key not in active_keys]


def _latest_by_key(session: Session, kinds: tuple[str, ...], *where: Any) -> dict[str, datetime]:
    query = select(EVENT.c.key, func.max(EVENT.c.at)).where(EVENT.c.kind.in_(kinds), *where).group_by(EVENT.c.key)
    return {str(key): at for key, at in session.execute(query).tuples()}


def active_keys(session: Session) -> set[str]:
    """Keys whose latest event is upload started/resumed, from an agent that is online."""
    online = AGENT.select().with_only_columns(AGENT.c.id).where(AGENT.c.online)
    started = _latest_by_key(session, STARTS, EVENT.c.agent_id.in_(online))
    ended = _latest_by_key(session, ENDS, EVENT.c.key.in_(list(started)))
    session.commit()
    return {key for key, at in started.items() if key and (key not in ended or ended[key] < at)}


def list_pending(client: Any, bucket: str, page_size: int = 1000) -> Iterator[PendingUpload]:
    key_marker: str | None = None
    upload_marker: str | None = None
    while True:
        page = client._list_multipart_uploads(
            bucket, key_marker=key_marker, upload_id_marker=upload_marker, max_uploads=page_size
        )
        last: PendingUpload | None = None
        for upload in page.uploads:
            last = PendingUpload(upload.object_name, upload.upload_id or "", as_utc(upload.initiated_time))
            yield last
        if not page.is_truncated or last is None or (last.key, last.upload_id) == (key_marker, upload_marker):
            return
        key_marker, upload_marker = last.key, last.upload_id


class Janitor:
    def __init__(self, client: Any, bucket: str, max_age: timedelta) -> None:
        self.client, self.bucket, self.max_age = client, bucket, max_age
        self.aborted = 0

    def run(self, session: Session, now: datetime) -> list[PendingUpload]:
        active = active_keys(session)
        stale = stale_uploads(list_pending(self.client, self.bucket), active, now, self.max_age)
        for upload in stale:
            try:
                self.client._abort_multipart_upload(self.bucket, upload.key, upload.upload_id)
            except Exception as exc:  # one failed abort must not stop the rest
                log.warning("janitor: cannot abort %s (%s): %s", upload.key, upload.upload_id, exc)
                continue
            self.aborted += 1
            log.info(
                "janitor: aborted stale upload %s (%s), started %s", upload.key, upload.upload_id, upload.initiated
            )
        return stale
