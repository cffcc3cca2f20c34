"""One attempt at uploading one file, as a sans-I/O machine (h11 style): results in, the next command out.

Rules it keeps:
1. Everything that decides what happens to a file attempt lives in this file; the executor
   (:mod:`edge_agent.transfer.job`) runs the commands (:mod:`.commands`) and decides nothing.
2. One command at a time, one result per command. Any command may be answered with ``Failed``; what a fault
   leads to is :data:`RULES` and nothing else. ``Finish`` is the last command and is returned for ever after.
3. A pass: check the file is finished -> (first pass only) load the journal's record -> open the source ->
   plan the parts -> (record with equal settings) ListParts -> decide: resume, or abort the recorded upload and
   go fresh, or go fresh. Fresh: forget the record -> (dedup) is the object already stored? then DONE ->
   create -> journal the upload -> abort the key's other (stray) uploads -> announce. Then the parts ->
   complete -> HEAD and verify -> forget the record -> confirm the source did not change -> DONE.
4. Crash safety: an upload is journaled right after it is created, before any part is sent; a part is
   journaled only once the server acknowledged it (or, on resume, listed it with our MD5); the record is
   forgotten only once the object is complete, or when the upload is discarded.
5. Leaving the parts phase for any reason other than success closes the parts first (sends in flight stop
   and are waited for) and only then aborts or forgets anything.
6. A restart discards the upload as its rule says (abort and forget, or forget only), then starts a new pass
   from the file check that never resumes. After ``restarts_allowed`` restarts the attempt ends in RETRY.
7. Per part (:class:`.upload.PartLedger`): the server's list is the truth; a listed part with our MD5 is
   skipped, a listed part with another is a restart, the rest are sent. Complete names every part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edge_agent.engine import commands as c
from edge_agent.engine.commands import Disposition, Fault
from edge_agent.engine.partsize import ObjectTooLarge, plan_parts
from edge_agent.engine.upload import (
    LocalProtocolError,
    PartAction,
    PartLedger,
    ResumeDecision,
    ResumeKind,
    StoredPart,
    UploadRecord,
    UploadSettings,
    decide_resume,
)
from fleet_protocol.vocabulary import EventKind


class Then(Enum):
    FINISH = "finish"  # end the attempt with the rule's disposition
    RESTART = "restart"  # discard the upload, start a new pass
    CONTINUE = "continue"  # a best-effort step: go on as if the command had answered ``as_if``


class Discard(Enum):
    NONE = "none"  # keep the journaled upload (and its parts) for a later resume
    FORGET = "forget"  # drop the journal's record only (the upload is gone or complete)
    ABORT = "abort"  # abort the journaled upload on the server, then drop the record


@dataclass(frozen=True)
class Rule:
    then: Then
    disposition: Disposition = Disposition.RETRY
    reason: str = "{}"  # formatted with the error's text
    discard: Discard = Discard.NONE
    as_if: c.Result | None = None  # Then.CONTINUE: the result the step goes on with


def _finish(disposition: Disposition, reason: str = "{}", discard: Discard = Discard.NONE) -> Rule:
    return Rule(Then.FINISH, disposition, reason, discard)


def _go_on(as_if: c.Result) -> Rule:
    return Rule(Then.CONTINUE, as_if=as_if)


#: (command, fault) -> what the attempt does. ``None`` rows are a fault's default; a command's own row wins.
RULES: Mapping[tuple[type[c.Command] | None, Fault], Rule] = {
    # the file
    (None, Fault.NOT_READY): _finish(Disposition.DEFER, "still being written: {}"),
    (None, Fault.REJECTED): _finish(Disposition.REJECTED),
    (None, Fault.VANISHED): _finish(Disposition.REJECTED, "file vanished: {}"),
    (None, Fault.CHANGED): _finish(Disposition.RETRY, "changed while uploading, will retry: {}", Discard.ABORT),
    (None, Fault.STOPPED): _finish(Disposition.STOPPED, "engine stopped"),
    # the store: the request was retried with backoff already; the parts stay for a resume
    (None, Fault.RETRYABLE): _finish(Disposition.RETRY),
    (None, Fault.FATAL): _finish(Disposition.RETRY),
    (None, Fault.GONE): Rule(Then.RESTART, discard=Discard.FORGET),
    (None, Fault.UNEXPECTED): _finish(Disposition.RETRY, "internal error: {}"),
    # what the attempt finds itself
    (None, Fault.PART_DIFFERS): Rule(Then.RESTART, discard=Discard.ABORT),
    (None, Fault.NOT_VERIFIED): Rule(Then.RESTART, reason="verification failed: {}", discard=Discard.FORGET),
    # best-effort steps
    (c.Abort, Fault.FATAL): _go_on(c.Ok()),  # not allowed to abort: the janitor removes it
    (c.ListUploads, Fault.RETRYABLE): _go_on(c.UploadsListed(())),  # strays are left to the janitor
    (c.ListUploads, Fault.FATAL): _go_on(c.UploadsListed(())),
    (c.ListUploads, Fault.GONE): _go_on(c.UploadsListed(())),
    (c.Complete, Fault.GONE): _go_on(c.Ok()),  # a retried Complete whose first try got through: HEAD decides
    **{(c.CheckExisting, f): _go_on(c.Existing(same=False)) for f in Fault},  # dedup is an optimisation
}


def rule_for(command: type[c.Command], fault: Fault) -> Rule:
    return RULES.get((command, fault)) or RULES[(None, fault)]


@dataclass(frozen=True)
class AttemptConfig:
    part_size: int  # requested part size of a new upload
    compression_level: int  # of a new upload (a resumed one keeps its own)
    restarts_allowed: int = 2
    dedup: bool = True  # look for the object before creating an upload


class Phase(Enum):
    CHECK_FILE = "check_file"
    LOAD_RECORD = "load_record"
    OPEN_SOURCE = "open_source"
    LIST_PARTS = "list_parts"
    ABORT_OLD = "abort_old"
    DROP_OLD = "drop_old"
    CHECK_EXISTING = "check_existing"
    CREATE = "create"
    SAVE_UPLOAD = "save_upload"
    LIST_UPLOADS = "list_uploads"
    ABORT_STRAY = "abort_stray"
    ANNOUNCE = "announce"
    OPEN_PARTS = "open_parts"
    READ_PART = "read_part"
    PLACE_PART = "place_part"  # SendPart or SkipPart
    COLLECT = "collect"
    SAVE_PART = "save_part"
    CLOSE_PARTS = "close_parts"
    COMPLETE = "complete"
    HEAD = "head"
    DROP_DONE = "drop_done"
    CONFIRM = "confirm"
    DISCARD_ABORT = "discard_abort"
    DISCARD_DROP = "discard_drop"
    START_OVER = "start_over"
    FINISHED = "finished"


@dataclass
class _Pass:
    """What one pass over the source has learnt so far."""

    record: UploadRecord | None = None  # the journal's record, resumable only in the first pass
    opened: c.SourceOpened | None = None
    settings: UploadSettings | None = None
    upload_id: str = ""
    ledger: PartLedger = field(default_factory=PartLedger)
    strays: list[str] = field(default_factory=list)


class FileAttempt:
    """Call :meth:`next_command`, run it, :meth:`receive` its result; until the command is a ``Finish``."""

    def __init__(self, config: AttemptConfig) -> None:
        self._config = config
        self.restarts = 0
        self.retries = 0  # part retries, for the events
        self._pass = _Pass()
        self._journaled: tuple[str, str] | None = None  # (key, upload id) the journal holds for the file
        self._parts_open = False
        self._exit: tuple[Rule, str] | None = None  # leaving: the rule and the reason
        self._phase = Phase.CHECK_FILE
        self._command: c.Command = c.CheckFile()

    @property
    def phase(self) -> Phase:
        return self._phase

    def next_command(self) -> c.Command:
        return self._command

    def receive(self, result: c.Result) -> None:
        if self._phase is Phase.FINISHED:
            raise LocalProtocolError("the attempt is finished")
        accepts, handle = TRANSITIONS[self._phase]
        if isinstance(result, c.Failed):
            self._fault(result.fault, result.reason)
        elif isinstance(result, accepts):
            handle(self, result)
        else:
            raise LocalProtocolError(f"{type(result).__name__} does not answer {type(self._command).__name__}")

    # -- moving on -----------------------------------------------------------------------------------------
    def _go(self, phase: Phase, command: c.Command) -> None:
        self._phase, self._command = phase, command

    def _fault(self, fault: Fault, reason: str) -> None:
        rule = rule_for(type(self._command), fault)
        if rule.then is Then.CONTINUE:
            assert rule.as_if is not None
            TRANSITIONS[self._phase][1](self, rule.as_if)
        else:
            self._leave(rule, rule.reason.format(reason))

    def _leave(self, rule: Rule, reason: str) -> None:
        self._exit = (rule, reason)
        if self._parts_open:
            self._parts_open = False
            self._go(Phase.CLOSE_PARTS, c.CloseParts())
        else:
            self._discard()

    def _discard(self) -> None:
        assert self._exit is not None
        rule, reason = self._exit
        if self._journaled and rule.discard is Discard.ABORT and self._phase is not Phase.DISCARD_ABORT:
            self._go(Phase.DISCARD_ABORT, c.Abort(*self._journaled, why=f"discarding it ({reason})"))
        elif self._journaled and rule.discard is not Discard.NONE:
            self._go(Phase.DISCARD_DROP, c.DropRecord())
        elif rule.then is Then.FINISH:
            self._finish(rule.disposition, reason)
        else:
            self._restart(reason)

    def _restart(self, reason: str) -> None:
        self.restarts += 1
        if self.restarts > self._config.restarts_allowed:
            self._finish(Disposition.RETRY, f"gave up after {self.restarts} restarts: {reason}")
        else:
            self._go(Phase.START_OVER, c.StartOver(reason, self.restarts))

    def _finish(self, disposition: Disposition, reason: str = "", **done: Any) -> None:
        self._go(Phase.FINISHED, c.Finish(disposition, reason, self.retries, **done))

    # -- the file ------------------------------------------------------------------------------------------
    def _on_file_ready(self, _: c.Ok) -> None:
        if self.restarts:
            self._go(Phase.OPEN_SOURCE, c.OpenSource(self._config.compression_level))
        else:
            self._go(Phase.LOAD_RECORD, c.LoadRecord())

    def _on_record(self, result: c.RecordLoaded) -> None:
        record = self._pass.record = result.record
        if record is None:
            self._go(Phase.OPEN_SOURCE, c.OpenSource(self._config.compression_level))
            return
        self._journaled = (record.settings.key, record.upload_id)
        self._go(Phase.OPEN_SOURCE, c.OpenSource(record.settings.compression_level))

    def _on_opened(self, opened: c.SourceOpened) -> None:
        self._pass.opened = opened
        try:
            settings = self._pass.settings = self._settings(opened)
        except ObjectTooLarge as exc:
            self._fault(Fault.REJECTED, str(exc))
            return
        record = self._pass.record
        if record is not None and record.settings == settings:
            self._go(Phase.LIST_PARTS, c.ListParts(record.settings.key, record.upload_id))
        else:
            self._decide(None)

    def _settings(self, opened: c.SourceOpened) -> UploadSettings:
        """A resumed upload keeps its part plan (unless it no longer fits) and compression level."""
        record, config = self._pass.record, self._config
        requested = record.settings.plan.size if record else config.part_size
        plan = plan_parts(requested, opened.size_bound, opened.header_size)
        if record and record.settings.plan.size >= plan.size:
            plan = record.settings.plan
        level = record.settings.compression_level if record else config.compression_level
        return UploadSettings(opened.key, plan, opened.header_size, level, opened.fingerprint)

    # -- resume or fresh -----------------------------------------------------------------------------------
    def _on_parts_listed(self, result: c.PartsListed) -> None:
        self._decide(result.parts)

    def _decide(self, server: tuple[StoredPart, ...] | None) -> None:
        record, settings = self._pass.record, self._pass.settings
        assert settings is not None
        decision = decide_resume(record, settings, server)
        if decision.kind is ResumeKind.RESUME:
            self._resume(decision)
        elif decision.kind is ResumeKind.ABORT_THEN_FRESH:
            assert record is not None
            self._go(Phase.ABORT_OLD, c.Abort(record.settings.key, decision.upload_id, why=decision.reason))
        else:
            self._go(Phase.DROP_OLD, c.DropRecord())

    def _resume(self, decision: ResumeDecision) -> None:
        self._pass.upload_id = decision.upload_id
        self._pass.ledger = PartLedger.for_decision(decision)
        have = sum(len(etags) for etags in decision.known.values())
        self._go(Phase.ANNOUNCE, c.Announce(EventKind.UPLOAD_RESUMED, f"{have} parts already stored", self.retries))

    def _on_old_aborted(self, _: c.Ok) -> None:
        self._go(Phase.DROP_OLD, c.DropRecord())

    def _on_old_dropped(self, _: c.Ok) -> None:
        self._journaled = None
        if self._config.dedup:
            self._go(Phase.CHECK_EXISTING, c.CheckExisting(self._key))
        else:
            self._go(Phase.CREATE, c.CreateUpload(self._key))

    def _on_existing(self, result: c.Existing) -> None:
        if result.same:
            self._finish(Disposition.DONE, "already stored")
        else:
            self._go(Phase.CREATE, c.CreateUpload(self._key))

    def _on_created(self, result: c.Created) -> None:
        assert self._pass.settings is not None
        self._pass.upload_id = result.upload_id
        self._go(Phase.SAVE_UPLOAD, c.SaveUpload(result.upload_id, self._pass.settings))

    def _on_upload_saved(self, _: c.Ok) -> None:
        self._journaled = (self._key, self._pass.upload_id)
        self._go(Phase.LIST_UPLOADS, c.ListUploads(self._key))

    def _on_uploads_listed(self, result: c.UploadsListed) -> None:
        self._pass.strays = [u for u in result.upload_ids if u != self._pass.upload_id]
        self._next_stray()

    def _next_stray(self, _: c.Ok | None = None) -> None:
        if self._pass.strays:
            self._go(Phase.ABORT_STRAY, c.Abort(self._key, self._pass.strays.pop(0), why="stray upload of the key"))
        else:
            self._pass.ledger = PartLedger()
            self._go(Phase.ANNOUNCE, c.Announce(EventKind.UPLOAD_STARTED, "", self.retries))

    @property
    def _key(self) -> str:
        assert self._pass.settings is not None
        return self._pass.settings.key

    # -- the parts -----------------------------------------------------------------------------------------
    def _on_announced(self, _: c.Ok) -> None:
        settings = self._pass.settings
        assert settings is not None
        self._go(Phase.OPEN_PARTS, c.OpenParts(settings.key, self._pass.upload_id, settings.plan, settings.header_size))

    def _on_parts_opened(self, _: c.Ok) -> None:
        self._parts_open = True
        self._go(Phase.READ_PART, c.ReadPart())

    def _on_read(self, result: c.PartRead | c.BodyRead) -> None:
        ledger = self._pass.ledger
        if isinstance(result, c.BodyRead):
            ledger.body_done()
            self._collect_or_close()
            return
        action = ledger.on_part(result.number, result.md5, result.size)
        if action is PartAction.RESTART:
            self._fault(Fault.PART_DIFFERS, ledger.restart_reason)
        elif action is PartAction.SKIP:
            self._go(Phase.PLACE_PART, c.SkipPart(StoredPart(result.number, result.md5, result.size, result.offset)))
        else:
            self._go(Phase.PLACE_PART, c.SendPart(result.number))

    def _on_placed(self, _: c.Ok) -> None:
        self._go(Phase.COLLECT, c.CollectSends(wait=False))

    def _on_collected(self, result: c.PartSent | c.NoneSent) -> None:
        if isinstance(result, c.NoneSent):
            if isinstance(self._command, c.CollectSends) and self._command.wait:
                raise LocalProtocolError("NoneSent does not answer CollectSends(wait=True)")
            self._go(Phase.READ_PART, c.ReadPart())
            return
        self._pass.ledger.on_acked(result.part.number, result.part.etag)
        self.retries += result.retries
        self._go(Phase.SAVE_PART, c.SavePart(result.part))

    def _on_part_saved(self, _: c.Ok) -> None:
        if self._pass.ledger.body_is_done:
            self._collect_or_close()
        else:
            self._go(Phase.COLLECT, c.CollectSends(wait=False))

    def _collect_or_close(self) -> None:
        if self._pass.ledger.outstanding:
            self._go(Phase.COLLECT, c.CollectSends(wait=True))
        else:
            self._parts_open = False
            self._go(Phase.CLOSE_PARTS, c.CloseParts())

    def _on_parts_closed(self, _: c.Ok) -> None:
        if self._exit is not None:
            self._discard()
        else:
            completion = self._pass.ledger.completion()
            self._go(Phase.COMPLETE, c.Complete(self._key, self._pass.upload_id, completion))

    # -- completion ----------------------------------------------------------------------------------------
    def _on_completed(self, _: c.Ok) -> None:
        self._go(Phase.HEAD, c.Head(self._key))

    def _on_head(self, result: c.ObjectFound | c.ObjectMissing) -> None:
        if isinstance(result, c.ObjectMissing):
            problem = "object missing after completion"
        else:
            problem = self._pass.ledger.verify(result.size, result.etag)
        if problem:
            self._fault(Fault.NOT_VERIFIED, problem)
        else:
            self._go(Phase.DROP_DONE, c.DropRecord())

    def _on_done_dropped(self, _: c.Ok) -> None:
        self._journaled = None
        self._go(Phase.CONFIRM, c.ConfirmSource())

    def _on_confirmed(self, result: c.SourceConfirmed) -> None:
        size = self._pass.ledger.object_size
        self._finish(Disposition.DONE, stored_bytes=size, original_sha256=result.original_sha256, uploaded=True)

    # -- leaving -------------------------------------------------------------------------------------------
    def _on_discard_aborted(self, _: c.Ok) -> None:
        self._discard()

    def _on_discard_dropped(self, _: c.Ok) -> None:
        self._journaled = None
        self._discard()

    def _on_started_over(self, _: c.Ok) -> None:
        self._pass = _Pass()
        self._exit = None
        self._go(Phase.CHECK_FILE, c.CheckFile())


#: phase -> (the results it accepts besides ``Failed``, what the attempt does with one)
TRANSITIONS: Mapping[Phase, tuple[tuple[type[Any], ...], Callable[[FileAttempt, Any], None]]] = {
    Phase.CHECK_FILE: ((c.Ok,), FileAttempt._on_file_ready),
    Phase.LOAD_RECORD: ((c.RecordLoaded,), FileAttempt._on_record),
    Phase.OPEN_SOURCE: ((c.SourceOpened,), FileAttempt._on_opened),
    Phase.LIST_PARTS: ((c.PartsListed,), FileAttempt._on_parts_listed),
    Phase.ABORT_OLD: ((c.Ok,), FileAttempt._on_old_aborted),
    Phase.DROP_OLD: ((c.Ok,), FileAttempt._on_old_dropped),
    Phase.CHECK_EXISTING: ((c.Existing,), FileAttempt._on_existing),
    Phase.CREATE: ((c.Created,), FileAttempt._on_created),
    Phase.SAVE_UPLOAD: ((c.Ok,), FileAttempt._on_upload_saved),
    Phase.LIST_UPLOADS: ((c.UploadsListed,), FileAttempt._on_uploads_listed),
    Phase.ABORT_STRAY: ((c.Ok,), FileAttempt._next_stray),
    Phase.ANNOUNCE: ((c.Ok,), FileAttempt._on_announced),
    Phase.OPEN_PARTS: ((c.Ok,), FileAttempt._on_parts_opened),
    Phase.READ_PART: ((c.PartRead, c.BodyRead), FileAttempt._on_read),
    Phase.PLACE_PART: ((c.Ok,), FileAttempt._on_placed),
    Phase.COLLECT: ((c.PartSent, c.NoneSent), FileAttempt._on_collected),
    Phase.SAVE_PART: ((c.Ok,), FileAttempt._on_part_saved),
    Phase.CLOSE_PARTS: ((c.Ok,), FileAttempt._on_parts_closed),
    Phase.COMPLETE: ((c.Ok,), FileAttempt._on_completed),
    Phase.HEAD: ((c.ObjectFound, c.ObjectMissing), FileAttempt._on_head),
    Phase.DROP_DONE: ((c.Ok,), FileAttempt._on_done_dropped),
    Phase.CONFIRM: ((c.SourceConfirmed,), FileAttempt._on_confirmed),
    Phase.DISCARD_ABORT: ((c.Ok,), FileAttempt._on_discard_aborted),
    Phase.DISCARD_DROP: ((c.Ok,), FileAttempt._on_discard_dropped),
    Phase.START_OVER: ((c.Ok,), FileAttempt._on_started_over),
}
