"""Queue control on the agent (docs/queue-control.md): list the upload queue, retry now, upload first, hold,
release; asked over MQTT v5 request/response by the dashboard.

- :class:`QueueMarks`: what operators set on a file (held, moved to the front), in memory and in SQLite next to
  the journal (``queue_marks.db`` in the state folder), so a hold survives a restart;
- :class:`ControlledJournal`: the engine's journal with those marks laid over its queue (the scheduler's
  ``pick_next`` then skips held files and takes the front ones first) and dropped when a file leaves the queue;
- :class:`Uploading`: which files have an attempt running, from the engine's events;
- :class:`QueueRequests`: one request in (payload, Response Topic, Correlation Data), one reply out. The rules
  are the pure engine's (``edge_agent.engine.queue.apply_action``, ``queue_view``); nothing here touches the
  engine's threads. A request with no acceptable Response Topic is dropped and counted; any other bad request
  gets an error reply; nothing raises into the link or the service loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.queue import (
    AGING_BPS,
    QueueCommand,
    QueueEntry,
    QueueView,
    apply_action,
    queue_view,
)
from edge_agent.engine.upload import StoredPart, UploadRecord, UploadSettings
from edge_agent.transfer.ports import Journal
from fleet_base.filenames import display_name, name_from_sql, safe_text, sql_name
from fleet_protocol.bounds import fit
from fleet_protocol.codec import decode_queue_request
from fleet_protocol.errors import ProtocolError
from fleet_protocol.messages import (
    MAX_PAYLOAD_BYTES,
    MAX_QUEUE_ENTRIES,
    MAX_QUEUE_ERROR_CHARS,
    QueueItem,
    QueueReply,
    QueueRequest,
)
from fleet_protocol.topics import parse_queue_reply_topic
from fleet_protocol.vocabulary import EventKind, QueueAction

log = logging.getLogger(__name__)

MARKS_SCHEMA = "CREATE TABLE IF NOT EXISTS marks (path TEXT PRIMARY KEY, held INTEGER NOT NULL, first INTEGER NOT NULL)"


class QueueMarks:
    """held / first per queued path; written through to SQLite (fsynced) before an action is answered."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(MARKS_SCHEMA)
        rows = self._db.execute("SELECT path, held, first FROM marks").fetchall()
        self._marks: dict[str, tuple[bool, int]] = {name_from_sql(p): (bool(h), int(f)) for p, h, f in rows}

    def overlay(self, entries: Iterable[QueueEntry]) -> list[QueueEntry]:
        with self._lock:
            marks = dict(self._marks)
        return [replace(e, held=marks[e.path][0], first=marks[e.path][1]) if e.path in marks else e for e in entries]

    def save(self, entry: QueueEntry) -> None:
        """Keep the entry's marks (forget them when it has none)."""
        if not entry.held and entry.first == 0:
            self.forget(entry.path)
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO marks (path, held, first) VALUES (?,?,?)",
                (sql_name(entry.path), int(entry.held), entry.first),
            )
            self._marks[entry.path] = (entry.held, entry.first)

    def forget(self, path: str) -> None:
        with self._lock:
            if self._marks.pop(path, None) is not None:
                self._db.execute("DELETE FROM marks WHERE path=?", (sql_name(path),))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ControlledJournal:
    """The engine's :class:`~edge_agent.transfer.ports.Journal` with the operators' marks laid over its queue."""

    def __init__(self, inner: Journal, marks: QueueMarks) -> None:
        self.inner = inner
        self.marks = marks

    def queued(self) -> list[QueueEntry]:
        return self.marks.overlay(self.inner.queued())

    def finish_entry(self, path: str, status: str, key: str, reason: str) -> None:
        self.inner.finish_entry(path, status, key, reason)
        try:
            self.marks.forget(path)
        except sqlite3.Error as exc:  # a stale mark is harmless: overlay only applies to queued paths
            log.warning("cannot forget the queue marks of %s: %s", display_name(Path(path).name), exc)

    def enqueue(self, path: str, size: int, mtime_ns: int, now: float, recheck: bool) -> bool:
        return self.inner.enqueue(path, size, mtime_ns, now, recheck)

    def update_entry(self, entry: QueueEntry, reason: str) -> None:
        self.inner.update_entry(entry, reason)

    def status(self, path: str) -> tuple[str, str, str] | None:
        return self.inner.status(path)

    def upload(self, path: str) -> UploadRecord | None:
        return self.inner.upload(path)

    def start_upload(self, path: str, upload_id: str, settings: UploadSettings, now: float) -> None:
        self.inner.start_upload(path, upload_id, settings, now)

    def add_part(self, path: str, part: StoredPart) -> None:
        self.inner.add_part(path, part)

    def drop_upload(self, path: str) -> None:
        self.inner.drop_upload(path)

    def close(self) -> None:
        self.inner.close()
        self.marks.close()


_RUNNING = {EventKind.UPLOAD_STARTED, EventKind.UPLOAD_RESUMED}
_ENDED = {EventKind.UPLOAD_COMPLETED, EventKind.UPLOAD_FAILED, EventKind.FILE_REJECTED}


class Uploading:
    """The files with an attempt running, as the engine's events tell (called on the engine's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()

    def observe(self, event: EngineEvent) -> None:
        with self._lock:
            if event.kind in _RUNNING:
                self._paths.add(event.file)
            elif event.kind in _ENDED:
                self._paths.discard(event.file)

    def paths(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._paths)


class QueueController:
    """The agent's queue as operators see and steer it."""

    def __init__(
        self,
        journal: ControlledJournal,
        uploading: Uploading,
        clock: Callable[[], float] = time.time,
        aging_bps: float = AGING_BPS,
    ) -> None:
        self.journal = journal
        self.uploading = uploading
        self.clock = clock  # the engine's clock: the journal's times are on it
        self.aging_bps = aging_bps

    def view(self) -> list[QueueView]:
        entries = self.journal.queued()
        busy = self.uploading.paths() & {e.path for e in entries}
        return queue_view(entries, self.clock(), busy, self.aging_bps)

    def last_error(self, path: str) -> str:
        status = self.journal.status(path)
        return "" if status is None else status[2]

    def apply(self, action: QueueAction, file: str) -> str:
        """Apply ``action`` to the queued file the agent reports as ``file``; the error, or "" when done."""
        entries = self.journal.queued()
        path = next((e.path for e in entries if display_name(Path(e.path).name) == file), "")
        if not path:
            return f"no such file in the queue: {file}"
        outcome = apply_action(entries, QueueCommand(action, path))
        if outcome.entry is None:
            return outcome.error
        entry = outcome.entry
        self.journal.marks.save(entry)
        if action in (QueueAction.RETRY, QueueAction.PRIORITIZE):
            self.journal.update_entry(entry, self.last_error(path))
        return ""


@dataclass(frozen=True)
class Reply:
    topic: str
    payload: bytes
    correlation: bytes | None


@dataclass
class RequestCounters:
    answered: int = 0
    refused: int = 0  # answered with an error
    dropped: int = 0  # no acceptable Response Topic: nobody to answer


class QueueRequests:
    """Queue requests in, replies out (on the service thread)."""

    def __init__(self, agent_id: str, controller: QueueController | None) -> None:
        self.agent_id = agent_id
        self.controller = controller
        self.counters = RequestCounters()

    def handle(self, payload: bytes, response_topic: str | None, correlation: bytes | None) -> Reply | None:
        """The reply to publish (to the request's Response Topic, with its Correlation Data), or None when the
        request is dropped. Never raises."""
        try:
            requester, agent = parse_queue_reply_topic(response_topic or "")
        except ProtocolError as exc:
            self._drop(f"no usable Response Topic ({exc})")
            return None
        if agent != self.agent_id:
            self._drop(f"Response Topic {response_topic!r} is not for this agent")
            return None
        try:
            reply = self._answer(payload, requester)
        except Exception as exc:  # a bug must not stop the service loop: answer with the error
            log.exception("queue request from %s failed", requester)
            reply = self._error("unknown", QueueAction.LIST, f"internal error: {type(exc).__name__}")
        self.counters.answered += 1
        self.counters.refused += not reply.ok
        assert response_topic is not None
        return Reply(response_topic, fitted(reply), correlation)

    def _drop(self, why: str) -> None:
        self.counters.dropped += 1
        log.warning("queue request dropped (%d so far): %s", self.counters.dropped, why)

    def _answer(self, payload: bytes, requester: str) -> QueueReply:
        try:
            request = decode_queue_request(payload)
        except ProtocolError as exc:
            return self._error("unknown", QueueAction.LIST, str(exc))
        if self.controller is None:
            return self._error(request.request_id, request.action, "queue control is not available on this agent")
        log.info(
            "queue %s %s asked by %s", request.action.value, request.file or "-", request.requested_by or requester
        )
        error = "" if request.action is QueueAction.LIST else self.controller.apply(request.action, request.file)
        return self._listing(request, error)

    def _error(self, request_id: str, action: QueueAction, error: str) -> QueueReply:
        values = fit(QueueReply, error=error)
        return QueueReply(agent_id=self.agent_id, request_id=request_id, action=action, ok=False, **values)

    def _listing(self, request: QueueRequest, error: str) -> QueueReply:
        assert self.controller is not None
        views = self.controller.view()
        items = [self._item(v) for v in views[:MAX_QUEUE_ENTRIES]]
        values = fit(QueueReply, error=error, total=len(views))
        return QueueReply(
            agent_id=self.agent_id,
            request_id=request.request_id,
            action=request.action,
            ok=not error,
            entries=items,
            **values,
        )

    def _item(self, view: QueueView) -> QueueItem:
        entry = view.entry
        error = self.controller.last_error(entry.path) if self.controller is not None and entry.failures else ""
        values = fit(
            QueueItem,
            file=display_name(Path(entry.path).name),
            size=entry.size,
            retries=entry.failures,
            last_error=safe_text(error)[:MAX_QUEUE_ERROR_CHARS],
            retry_in_s=view.retry_in_s,
        )
        return QueueItem(state=view.state, first=entry.first > 0, **values)


def fitted(reply: QueueReply) -> bytes:
    """The reply's payload, with the entries cut (halved until it fits) when it would pass the payload limit."""
    payload = _encoded(reply)
    while payload is None:
        reply = reply.model_copy(update={"entries": reply.entries[: len(reply.entries) // 2]})
        payload = _encoded(reply)
    return payload


def _encoded(reply: QueueReply) -> bytes | None:
    data = reply.model_dump_json().encode()
    return data if len(data) <= MAX_PAYLOAD_BYTES else None
