"""Stale multipart uploads: abort those older than N hours that no agent reports as active.

MinIO has no lifecycle rule for incomplete uploads (docs/design.md §3/§4), so the controller cleans up.
``stale_uploads`` is the pure rule; ``Janitor`` lists (paginated) and aborts through the minio client.
minio 7.2 never fills ``next_upload_id_marker``, so pages continue from the last upload id seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, select

from controller.store.database import as_utc
from controller.store.models import Agent, UploadEvent
from controller.store.tables import column
from fleet_protocol.vocabulary import EventKind

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


def _latest_by_key(session: Session, kinds: tuple[str, ...], *where: ColumnElement[bool]) -> dict[str, datetime]:
    key, at, kind = column(UploadEvent.key), column(UploadEvent.at), column(UploadEvent.kind)
    query = select(key, func.max(at)).where(kind.in_(kinds), *where).group_by(key)
    return {str(key): at for key, at in session.exec(query)}


def active_keys(session: Session) -> set[str]:
    """Keys whose latest event is upload started/resumed, from an agent that is online."""
    online = select(column(Agent.id)).where(column(Agent.online))
    started = _latest_by_key(session, STARTS, column(UploadEvent.agent_id).in_(online))
    ended = _latest_by_key(session, ENDS, column(UploadEvent.key).in_(list(started)))
    session.commit()
    return {key for key, at in started.items() if key and (key not in ended or ended[key] < at)}


def list_pending(client: Any, bucket: str, *, prefix: str = "", page_size: int = 1000) -> Iterator[PendingUpload]:
    """Incomplete uploads, page by page. Pages continue after the last (key, upload id) seen; a page
    that brings nothing new ends the listing (SeaweedFS neither sorts by key nor honours the markers,
    so ``Janitor.run`` lists again after aborting, until a round finds nothing more to do)."""
    key_marker: str | None = None
    upload_marker: str | None = None
    seen: set[str] = set()
    while True:
        page = client._list_multipart_uploads(
            bucket, prefix=prefix or None, key_marker=key_marker, upload_id_marker=upload_marker, max_uploads=page_size
        )
        fresh = [u for u in page.uploads if (u.upload_id or "") not in seen]
        for upload in fresh:
            seen.add(upload.upload_id or "")
            yield PendingUpload(upload.object_name, upload.upload_id or "", as_utc(upload.initiated_time))
        if not page.is_truncated or not fresh:
            return
        key_marker, upload_marker = fresh[-1].object_name, fresh[-1].upload_id


class Janitor:
    def __init__(
        self, client: Any, bucket: str, max_age: timedelta, *, prefix: str = "", page_size: int = 1000
    ) -> None:
        self.client, self.bucket, self.max_age = client, bucket, max_age
        self.prefix, self.page_size = prefix, page_size
        self.aborted = 0

    def run(self, session: Session, now: datetime, max_rounds: int = 100) -> list[PendingUpload]:
        """Abort every stale upload; returns what was aborted."""
        active = active_keys(session)
        aborted: list[PendingUpload] = []
        failed: set[str] = set()
        for _round in range(max_rounds):
            pending = list_pending(self.client, self.bucket, prefix=self.prefix, page_size=self.page_size)
            stale = [u for u in stale_uploads(pending, active, now, self.max_age) if u.upload_id not in failed]
            if not stale:
                break
            for upload in stale:
                if self._abort(upload):
                    aborted.append(upload)
                else:
                    failed.add(upload.upload_id)
        return aborted

    def _abort(self, upload: PendingUpload) -> bool:
        try:
            self.client._abort_multipart_upload(self.bucket, upload.key, upload.upload_id)
        except Exception as exc:  # one failed abort must not stop the rest
            log.warning("janitor: cannot abort %s (%s): %s", upload.key, upload.upload_id, exc)
            return False
        self.aborted += 1
        log.info("janitor: aborted stale upload %s (%s), started %s", upload.key, upload.upload_id, upload.initiated)
        return True
