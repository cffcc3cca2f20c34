"""A world for the file-attempt machine: answers its commands at once, in one thread, the way the executor would,
over the in-memory fake store and journal (tests/unit/edge_agent/transfer/fakes.py).

The recording has ``parts`` parts (part 1 last when ``held``); with ``varies`` every opening of the source
produces other bytes (a codec that is not deterministic). ``inject(command)`` may return a ``Fault`` (the
command fails without effect), ``"lost"`` (the effect happens, the response is lost and the retry answers),
``"gone"`` (a janitor aborts the upload first) or ``"corrupt"`` (HEAD sees another object).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edge_agent.engine import commands as c
from edge_agent.engine.attempt import AttemptConfig, FileAttempt
from edge_agent.engine.commands import Fault
from edge_agent.engine.limits import MiB
from edge_agent.engine.partsize import plan_parts
from edge_agent.engine.upload import StoredPart, UploadSettings, md5_hex
from edge_agent.transfer.job import fault_of
from fleet_protocol.vocabulary import EventKind
from tests.unit.edge_agent.transfer.fakes import FakeJournal, FakeObject, FakeStore

PATH = "/spool/a.wav"
KEY = "p/pi-7/2026/01/02/a.flac"
SIZE_BOUND = 30 * MiB
HEADER = 100
FINGERPRINT = (1000, 7, 9)
SHA = "5a" * 32
CONFIG = AttemptConfig(part_size=8 * MiB, compression_level=5, restarts_allowed=2)
Injection = Fault | str | None


def new_settings(header: int = HEADER, fingerprint: tuple[int, int, int] = FINGERPRINT) -> UploadSettings:
    """The settings the machine makes for a new upload of the recording."""
    plan = plan_parts(CONFIG.part_size, SIZE_BOUND, header)
    return UploadSettings(KEY, plan, header, CONFIG.compression_level, fingerprint)


class World:
    def __init__(self, parts: int = 3, held: bool = True, varies: bool = False) -> None:
        self.store, self.journal = FakeStore(), FakeJournal()
        self.parts, self.held, self.varies = parts, held, varies
        self.inject: Callable[[c.Command], Injection] = lambda command: None
        self.deliver: Callable[[], bool] = lambda: True  # does CollectSends(wait=False) find a finished send?
        self.log: list[c.Command] = []
        self.results: list[c.Result] = []  # the answer to each command of ``log``
        self.opens = 0
        self._reading: Iterator[int] = iter(())
        self._inflight: list[int] = []
        self._upload = ("", "")
        self._lost = False

    # -- the recording ---------------------------------------------------------------------------------------
    @property
    def header(self) -> int:
        return HEADER if self.held else 0

    def data(self, number: int, variant: int | None = None) -> bytes:
        variant = (self.opens if self.varies else 0) if variant is None else variant
        return f"{KEY} part {number} of variant {variant}".encode()

    def object_bytes(self) -> bytes:
        return b"".join(self.data(n) for n in range(1, self.parts + 1))

    def order(self) -> list[int]:
        return [*range(2, self.parts + 1), 1] if self.held else list(range(1, self.parts + 1))

    # -- what was there before -------------------------------------------------------------------------------
    def recorded(self, stored: tuple[int, ...] = (), variant: int = 0, **changes: Any) -> str:
        """An upload in progress from an earlier run: on the server with ``stored`` parts, in the journal."""
        upload_id = self.store.create(KEY, "audio/flac", {"sha256": SHA})
        for n in stored:
            data = bytearray(self.data(n, variant))
            self.store.upload_part(KEY, upload_id, n, data, md5_hex(data))
        self.journal.start_upload(PATH, upload_id, new_settings(self.header, **changes), 0.0)
        return upload_id

    def stray(self, key: str = KEY) -> str:
        return self.store.create(key, "audio/flac", {})

    def existing(self, sha: str = SHA) -> None:
        self.store.objects[KEY] = FakeObject(b"old", "e" * 32, {"sha256": sha})

    # -- answering -------------------------------------------------------------------------------------------
    def answer(self, command: c.Command) -> c.Result:
        self.log.append(command)
        result = self._answer(command)
        self.results.append(result)
        return result

    def _answer(self, command: c.Command) -> c.Result:
        injected = self.inject(command)
        if isinstance(injected, Fault):
            return c.Failed(injected, f"injected {injected.value}")
        if injected == "gone":
            self.store.uploads.pop(self._upload[1], None)
        self._lost = injected == "lost"
        try:
            result: c.Result = getattr(self, f"_{type(command).__name__}")(command)
            if injected == "corrupt" and isinstance(result, c.ObjectFound):
                result = c.ObjectFound(result.size + 1, result.etag)
            return result
        except Exception as exc:
            fault = fault_of(exc)
            if fault is None:
                raise
            return c.Failed(fault, str(exc))

    def _retried(self, call: Callable[[], Any]) -> Any:
        """A store call; when its response is lost, the executor's retry answers."""
        result = call()
        return call() if self._lost else result

    def _CheckFile(self, _: c.CheckFile) -> c.Result:
        return c.Ok()

    def _LoadRecord(self, _: c.LoadRecord) -> c.Result:
        return c.RecordLoaded(self.journal.upload(PATH))

    def _OpenSource(self, _: c.OpenSource) -> c.Result:
        self.opens += 1
        return c.SourceOpened(KEY, SIZE_BOUND, self.header, FINGERPRINT)

    def _ListParts(self, command: c.ListParts) -> c.Result:
        parts = self._retried(lambda: self.store.list_parts(command.key, command.upload_id))
        return c.PartsListed(None if parts is None else tuple(parts))

    def _Abort(self, command: c.Abort) -> c.Result:
        self._retried(lambda: self.store.abort(command.key, command.upload_id))
        return c.Ok()

    def _DropRecord(self, _: c.DropRecord) -> c.Result:
        self.journal.drop_upload(PATH)
        return c.Ok()

    def _CheckExisting(self, command: c.CheckExisting) -> c.Result:
        head = self._retried(lambda: self.store.head(command.key))
        return c.Existing(head is not None and head.metadata.get("sha256") == SHA)

    def _CreateUpload(self, command: c.CreateUpload) -> c.Result:
        return c.Created(self._retried(lambda: self.store.create(command.key, "audio/flac", {"sha256": SHA})))

    def _SaveUpload(self, command: c.SaveUpload) -> c.Result:
        self.journal.start_upload(PATH, command.upload_id, command.settings, 0.0)
        return c.Ok()

    def _ListUploads(self, command: c.ListUploads) -> c.Result:
        pending = self._retried(lambda: self.store.pending_uploads(command.key))
        return c.UploadsListed(tuple(p.upload_id for p in pending if p.key == command.key))

    def _Announce(self, _: c.Announce) -> c.Result:
        return c.Ok()

    def _OpenParts(self, command: c.OpenParts) -> c.Result:
        self._reading, self._inflight = iter(self.order()), []
        self._upload = (command.key, command.upload_id)
        return c.Ok()

    def _ReadPart(self, _: c.ReadPart) -> c.Result:
        number = next(self._reading, None)
        if number is None:
            return c.BodyRead()
        data = self.data(number)
        return c.PartRead(number, number * 100, md5_hex(data), len(data))

    def _SendPart(self, command: c.SendPart) -> c.Result:
        self._inflight.append(command.number)
        return c.Ok()

    def _SkipPart(self, command: c.SkipPart) -> c.Result:
        self.journal.add_part(PATH, command.part)
        return c.Ok()

    def _CollectSends(self, command: c.CollectSends) -> c.Result:
        if not self._inflight or not (command.wait or self.deliver()):
            assert not command.wait, "waiting for a send with none in flight"
            return c.NoneSent()
        number = self._inflight.pop(0)
        data = bytearray(self.data(number))
        etag = self._retried(lambda: self.store.upload_part(*self._upload, number, data, md5_hex(data)))
        return c.PartSent(StoredPart(number, etag, len(data), number * 100), retries=int(self._lost))

    def _SavePart(self, command: c.SavePart) -> c.Result:
        self.journal.add_part(PATH, command.part)
        return c.Ok()

    def _CloseParts(self, _: c.CloseParts) -> c.Result:
        self._reading, self._inflight = iter(()), []
        return c.Ok()

    def _Complete(self, command: c.Complete) -> c.Result:
        self._retried(lambda: self.store.complete(command.key, command.upload_id, list(command.parts)))
        return c.Ok()

    def _Head(self, command: c.Head) -> c.Result:
        head = self._retried(lambda: self.store.head(command.key))
        return c.ObjectMissing() if head is None else c.ObjectFound(head.size, head.etag)

    def _ConfirmSource(self, _: c.ConfirmSource) -> c.Result:
        return c.SourceConfirmed(SHA)

    def _StartOver(self, _: c.StartOver) -> c.Result:
        return c.Ok()

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, machine: FileAttempt | None = None, limit: int = 2000) -> c.Finish:
        machine = machine or FileAttempt(CONFIG)
        for _ in range(limit):
            command = machine.next_command()
            if isinstance(command, c.Finish):
                return command
            machine.receive(self.answer(command))
        raise AssertionError(f"no Finish after {limit} commands: {self.log[-10:]}")

    def sent(self) -> list[int]:
        return [cmd.number for cmd in self.log if isinstance(cmd, c.SendPart)]

    def announced(self) -> list[EventKind]:
        return [cmd.kind for cmd in self.log if isinstance(cmd, c.Announce)]

    def commands(self, kind: type[Any]) -> list[Any]:
        return [cmd for cmd in self.log if isinstance(cmd, kind)]
