"""The recordings catalog: completed uploads → ``recording`` rows → the facts read from the stored object.

One round (``Cataloger.run_once``):

1. ``upload_completed`` events without a ``recording`` row get a pending row (agent, the agent's site, key,
   sizes, sha256, codec = ``stored_as``): an insert-or-ignore on the unique key, so two controllers never
   double-insert; a key uploaded again (new content, a newer event) moves its row to the newer event and back to
   pending. Events are read after a cursor; every ``sweep_interval_s`` the whole table is looked at again (an
   event committed late with a lower id).
2. Pending rows of this controller's sites (the sites split among live controllers as for the policy tick,
   ``controller.store.instances.sites_for``) are read from S3 (``objects.read_facts``) and become 'cataloged',
   or, after ``max_attempts`` tries with backoff, 'failed' with the error. S3 not answering counts no attempt
   and ends the round. An update only applies to the row as it was read (same event, still pending).

Clock: ``clock_offset(agent_id)`` is the alert evaluator's measure (controller clock − agent clock from
``sent_at`` against receive times); an agent off by ``clock_skew_s`` or more gets ``clock_suspect`` on the
recordings cataloged meanwhile, and a recorded-at taken from its file's mtime says so in the metadata.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, select, update
from sqlmodel import Session

from controller.recordings.objects import CatalogError, Expected, ObjectFacts, read_facts
from controller.store.database import to_db_time, upsert
from controller.store.instances import sites_for
from controller.store.models import Agent, Recording, UploadEvent
from controller.store.tables import EVENT, column, incoming, table_of
from fleet_audio import recmeta

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger(__name__)

RECORDING = table_of(Recording)
COMPLETED = "upload_completed"
MAX_ERROR = 500
#: ``recording.site`` is shorter than ``agent.site``: a longer site name is cut
MAX_SITE = 64
DENIED_HINT = "give the catalog's S3 identity s3:GetObject on the bucket, or set [catalog] access_key/secret_key"

#: the columns of the two tables, for Core statements
REC, EV = RECORDING.c, EVENT.c


@dataclass(frozen=True)
class CatalogSettings:
    batch: int = 100
    max_attempts: int = 4
    retry_first_s: float = 10.0
    sweep_interval_s: float = 600.0
    clock_skew_s: float = 30.0
    round_budget_s: float = 60.0


@dataclass
class _Try:
    attempts: int
    next_at: datetime


@dataclass(frozen=True)
class RoundResult:
    inserted: int = 0
    cataloged: int = 0
    failed: int = 0
    retrying: int = 0
    unreachable: bool = False


# --- step 1: pending rows from events --------------------------------------------------------------


def _unmatched(after: int, limit: int) -> Any:
    agent_site = select(column(Agent.site)).where(column(Agent.id) == column(UploadEvent.agent_id)).scalar_subquery()
    return (
        select(UploadEvent, agent_site)
        .where(EV.kind == COMPLETED, EV.key != "", EV.id > after)
        .where(~exists().where(REC.upload_event_id == EV.id))
        .where(~exists().where(and_(REC.key == EV.key, REC.upload_event_id > EV.id)))
        .order_by(EV.id)
        .limit(limit)
    )


def _pending_row(event: UploadEvent, site: str | None) -> dict[str, Any]:
    return {
        "upload_event_id": event.id,
        "key": event.key,
        "agent_id": event.agent_id,
        "site": (site or "")[:MAX_SITE],
        "file": event.file,
        "uploaded_at": to_db_time(event.at),
        "original_bytes": event.original_bytes,
        "stored_bytes": event.stored_bytes,
        "sha256": event.sha256,
        "codec": event.stored_as,
        "status": "pending",
        "error": "",
        "recorder_metadata": {},
        "recorded_at_source": "",
        "clock_suspect": False,
    }


#: what a newer event of the same key resets (the row starts over as pending)
_RESET = ("upload_event_id", "agent_id", "site", "file", "uploaded_at", "original_bytes", "stored_bytes", "sha256",
          "codec", "status", "error", "recorder_metadata", "recorded_at_source", "clock_suspect")  # fmt: skip


def insert_pending(session: Session, after: int, limit: int) -> tuple[int, int]:
    """Pending rows for up to ``limit`` unmatched events after id ``after``: (rows written, last event id)."""
    found = session.execute(_unmatched(after, limit)).all()
    if not found:
        return 0, after
    rows = [_pending_row(event, site) for event, site in found]
    stmt = upsert(session, RECORDING)
    newer = stmt.excluded.upload_event_id > RECORDING.c.upload_event_id
    reset = incoming(stmt, _RESET)
    reset |= {"recorded_at": None, "duration_s": None, "sample_rate": None, "channels": None,
              "bits_per_sample": None, "cataloged_at": None}  # fmt: skip
    session.execute(stmt.on_conflict_do_update(index_elements=[REC.key], set_=reset, where=newer), rows)
    session.commit()
    return len(rows), max(int(event.id or 0) for event, _ in found)


# --- step 2: read the objects ----------------------------------------------------------------------


def recorded(facts: ObjectFacts, file_name: str, offset_s: float | None, skew_s: float) -> dict[str, Any]:
    """The row's values from the object's facts and the agent's clock offset (pure)."""
    meta = recmeta.extract(facts.chunks, file_name=file_name, mtime=facts.mtime)
    fields: dict[str, Any] = dict(meta.fields)
    suspect = offset_s is not None and abs(offset_s) >= skew_s
    if suspect:
        fields["clock"] = {"offset_s": round(float(offset_s or 0.0), 3)}
        if meta.source == "mtime":
            fields["clock"]["note"] = "recorded_at is the file's mtime on an agent whose clock is off"
    return {
        "recorded_at": meta.recorded_at,
        "recorded_at_source": meta.source,
        "clock_suspect": suspect,
        "duration_s": facts.duration_s,
        "sample_rate": facts.sample_rate,
        "channels": facts.channels,
        "bits_per_sample": facts.bits_per_sample,
        "recorder_metadata": fields,
    }


def _file_name(row: Recording) -> str:
    return row.file or row.key.rsplit("/", 1)[-1]


class Cataloger:
    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        controller_id: str,
        settings: CatalogSettings = CatalogSettings(),
        clock_offset: Callable[[str], float | None] = lambda _agent: None,
        live_controllers: Callable[[Session, datetime], Sequence[str]] = lambda _s, _now: (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.bucket, self.controller_id = client, bucket, controller_id
        self.settings = settings
        self.clock_offset, self.live_controllers, self.clock = clock_offset, live_controllers, clock
        self.cursor = 0
        self.swept_at: datetime | None = None
        self.tries: dict[int, _Try] = {}
        #: why S3 stops the catalog right now ("" = it does not)
        self.blocked = ""
        self.totals = {"inserted": 0, "cataloged": 0, "failed": 0}

    def run_once(self, session: Session, now: datetime) -> RoundResult:
        """New rows, then the pending objects of this controller's sites, batch after batch, until none is left
        or the round has taken ``round_budget_s`` (so a backlog after an upgrade does not hold a round forever)."""
        inserted = self._insert(session, now)
        mine = self._my_sites(session, now)
        counts = {"cataloged": 0, "failed": 0, "retry": 0}
        started, after = self.clock(), 0
        while self.clock() - started < self.settings.round_budget_s:
            rows = self._pending(session, mine, after)
            if not rows:
                break
            after = int(rows[-1].id or 0)
            for row in rows:
                waiting = self.tries.get(int(row.id or 0))
                if waiting is not None and waiting.next_at > now:
                    continue
                outcome = self._one(session, row, now)
                if outcome == "unreachable":
                    return RoundResult(inserted, counts["cataloged"], counts["failed"], counts["retry"], True)
                counts[outcome] += 1
        return RoundResult(inserted, counts["cataloged"], counts["failed"], counts["retry"])

    def _insert(self, session: Session, now: datetime) -> int:
        if self.swept_at is None or (now - self.swept_at).total_seconds() >= self.settings.sweep_interval_s:
            self.cursor, self.swept_at = 0, now
        total = 0
        while True:
            count, self.cursor = insert_pending(session, self.cursor, self.settings.batch)
            total += count
            if count < self.settings.batch:
                break
        self.totals["inserted"] += total
        return total

    def _my_sites(self, session: Session, now: datetime) -> set[str] | None:
        """This controller's sites among the live controllers (every agent's site, and "" for none: the same
        split whatever is pending); None: it is alone (every site)."""
        live = list(self.live_controllers(session, now))
        if not live or live == [self.controller_id]:
            return None
        sites = session.execute(select(column(Agent.site)).distinct()).scalars().all()
        session.commit()
        mine = sites_for(self.controller_id, live, {"", *(s or "" for s in sites)})
        return {site[:MAX_SITE] for site in mine}  # as the rows hold them

    def _pending(self, session: Session, mine: set[str] | None, after: int) -> list[Recording]:
        query = select(Recording).where(REC.status == "pending", REC.id > after).order_by(REC.id)
        if mine is not None:
            query = query.where(REC.site.in_(sorted(mine)))
        rows = list(session.execute(query.limit(self.settings.batch)).scalars().all())
        session.commit()
        return rows

    def _one(self, session: Session, row: Recording, now: datetime) -> str:
        rid = int(row.id or 0)
        expected = Expected(row.key, row.codec, row.original_bytes, row.stored_bytes, row.sha256)
        try:
            facts = read_facts(self.client, self.bucket, expected)
            values = recorded(facts, _file_name(row), self.clock_offset(row.agent_id), self.settings.clock_skew_s)
        except CatalogError as exc:
            if exc.transient:
                self._blocked(str(exc) if exc.kind == "unreachable" else f"{exc}: {DENIED_HINT}")
                return "unreachable"
            return self._failed_try(session, row, f"{exc.kind}: {exc}", now)
        except Exception as exc:  # a bug or a surprise in one object must not stop the others
            log.exception("catalog: reading %s failed", row.key)
            return self._failed_try(session, row, f"error: {type(exc).__name__}: {exc}", now)
        self._update(session, row, {**values, "status": "cataloged", "error": "", "cataloged_at": to_db_time(now)})
        self._blocked("")
        self.tries.pop(rid, None)
        self.totals["cataloged"] += 1
        return "cataloged"

    def _blocked(self, why: str) -> None:
        """Say once (not every round) that S3 stops the catalog, and once that it goes on."""
        if why and why != self.blocked:
            log.error("catalog: waiting for S3 (no object counts a try meanwhile): %s", why)
        elif not why and self.blocked:
            log.info("catalog: S3 answers again")
        self.blocked = why

    def _failed_try(self, session: Session, row: Recording, error: str, now: datetime) -> str:
        rid = int(row.id or 0)
        before = self.tries.get(rid)
        attempts = (before.attempts if before else 0) + 1
        if attempts < self.settings.max_attempts:
            delay = self.settings.retry_first_s * 2 ** (attempts - 1)
            self.tries[rid] = _Try(attempts, now + timedelta(seconds=delay))
            self._update(session, row, {"error": f"attempt {attempts}: {error}"[:MAX_ERROR]})
            return "retry"
        self.tries.pop(rid, None)
        log.warning("catalog: %s failed after %d attempts: %s", row.key, attempts, error)
        self._update(session, row, {"status": "failed", "error": error[:MAX_ERROR], "cataloged_at": to_db_time(now)})
        self.totals["failed"] += 1
        return "failed"

    def _update(self, session: Session, row: Recording, values: dict[str, Any]) -> None:
        """Only the row as it was read: the same event, still pending (a newer upload of the key starts over)."""
        if values.get("recorded_at") is not None:
            values["recorded_at"] = to_db_time(values["recorded_at"])
        same = (REC.id == row.id) & (REC.upload_event_id == row.upload_event_id) & (REC.status == "pending")
        stmt = update(RECORDING).where(same)
        session.execute(stmt.values(**values))
        session.commit()
