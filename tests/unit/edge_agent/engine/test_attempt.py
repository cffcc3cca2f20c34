"""The file-attempt machine (pure): its protocol step by step, every fault's outcome, restarts, dedup, strays,
resume from the journal, lost responses; and random fault sequences (hypothesis). No threads, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.engine import commands as c
from edge_agent.engine.attempt import RULES, AttemptConfig, FileAttempt, Phase, Then
from edge_agent.engine.commands import Disposition, Fault
from edge_agent.engine.limits import MiB
from edge_agent.engine.upload import LocalProtocolError, StoredPart, md5_hex, multipart_etag
from fleet_protocol.vocabulary import EventKind
from tests.unit.edge_agent.engine.world import (
    CONFIG,
    FINGERPRINT,
    HEADER,
    KEY,
    PATH,
    SHA,
    SIZE_BOUND,
    World,
    new_settings,
)

MD5_1, MD5_2 = md5_hex(b"head"), md5_hex(b"two")
PART_1, PART_2 = StoredPart(1, MD5_1, 4, 0), StoredPart(2, MD5_2, 3, 5 * MiB)


def test_a_fresh_upload_step_by_step() -> None:
    """The protocol of one attempt, command by command: a held part 1 (sent last), a stray aborted."""
    new = new_settings()
    script: list[tuple[c.Command, c.Result]] = [
        (c.CheckFile(), c.Ok()),
        (c.LoadRecord(), c.RecordLoaded(None)),
        (c.OpenSource(5), c.SourceOpened(KEY, SIZE_BOUND, HEADER, FINGERPRINT)),
        (c.DropRecord(), c.Ok()),
        (c.CheckExisting(KEY), c.Existing(same=False)),
        (c.CreateUpload(KEY), c.Created("u2")),
        (c.SaveUpload("u2", new), c.Ok()),
        (c.ListUploads(KEY), c.UploadsListed(("u1", "u2"))),
        (c.Abort(KEY, "u1", why="stray upload of the key"), c.Ok()),
        (c.Announce(EventKind.UPLOAD_STARTED, "", 0), c.Ok()),
        (c.OpenParts(KEY, "u2", new.plan, HEADER), c.Ok()),
        (c.ReadPart(), c.PartRead(2, 5 * MiB, MD5_2, 3)),
        (c.SendPart(2), c.Ok()),
        (c.CollectSends(wait=False), c.NoneSent()),
        (c.ReadPart(), c.PartRead(1, 0, MD5_1, 4)),
        (c.SendPart(1), c.Ok()),
        (c.CollectSends(wait=False), c.PartSent(PART_2, retries=1)),
        (c.SavePart(PART_2), c.Ok()),
        (c.CollectSends(wait=False), c.NoneSent()),
        (c.ReadPart(), c.BodyRead()),
        (c.CollectSends(wait=True), c.PartSent(PART_1, retries=0)),
        (c.SavePart(PART_1), c.Ok()),
        (c.CloseParts(), c.Ok()),
        (c.Complete(KEY, "u2", ((1, MD5_1), (2, MD5_2))), c.Ok()),
        (c.Head(KEY), c.ObjectFound(7, multipart_etag([MD5_1, MD5_2]))),
        (c.DropRecord(), c.Ok()),
        (c.ConfirmSource(), c.SourceConfirmed("sha")),
    ]
    machine = FileAttempt(CONFIG)
    for command, result in script:
        assert machine.next_command() == command
        machine.receive(result)
    assert machine.next_command() == c.Finish(
        Disposition.DONE, retries=1, stored_bytes=7, original_sha256="sha", uploaded=True
    )


def test_resume_from_the_journal_sends_only_what_the_server_lacks() -> None:
    world = World(parts=4)
    upload_id = world.recorded(stored=(2, 3))
    finish = world.run()
    assert finish.disposition is Disposition.DONE
    assert finish.uploaded
    assert world.announced() == [EventKind.UPLOAD_RESUMED]
    assert world.commands(c.Announce)[0].reason == "2 parts already stored"
    assert [cmd.part.number for cmd in world.commands(c.SkipPart)] == [2, 3]
    assert world.sent() == [4, 1]
    assert not world.commands(c.CreateUpload)
    assert world.store.completions[0][1] == upload_id
    assert world.store.objects[KEY].data == world.object_bytes()
    assert world.journal.upload(PATH) is None


def test_an_upload_journaled_before_part_2_had_its_own_size_resumes_with_its_plan() -> None:
    world = World(parts=4)
    upload_id = world.recorded(stored=(2, 3))
    record = world.journal.upload(PATH)
    assert record is not None
    old_plan = replace(record.settings.plan, second=0)  # what an older version journaled: part 2 at ``size``
    world.journal.start_upload(PATH, upload_id, replace(record.settings, plan=old_plan), 0.0)
    finish = world.run()
    assert finish.disposition is Disposition.DONE
    assert world.announced() == [EventKind.UPLOAD_RESUMED]
    assert [cmd.plan for cmd in world.commands(c.OpenParts)] == [old_plan]
    assert not world.commands(c.CreateUpload)
    assert world.sent() == [4, 1]


def test_a_changed_file_aborts_the_recorded_upload_and_goes_fresh() -> None:
    world = World()
    old = world.recorded(stored=(2,), fingerprint=(1000, 8, 9))  # another mtime
    assert world.run().disposition is Disposition.DONE
    aborts = world.commands(c.Abort)
    assert (aborts[0].upload_id, aborts[0].why) == (old, "file changed")
    assert not world.commands(c.ListParts)  # other settings: nothing on the server can be reused
    assert old not in world.store.uploads
    assert world.announced() == [EventKind.UPLOAD_STARTED]


def test_a_recorded_upload_the_server_forgot_goes_fresh_without_an_abort() -> None:
    world = World()
    old = world.recorded(stored=(2,))
    del world.store.uploads[old]
    assert world.run().disposition is Disposition.DONE
    assert world.commands(c.ListParts) == [c.ListParts(KEY, old)]
    assert not world.commands(c.Abort)
    assert world.announced() == [EventKind.UPLOAD_STARTED]


def test_a_part_that_differs_on_the_server_restarts_cleanly() -> None:
    world = World(varies=True)  # the codec's bytes differ from the earlier run's
    old = world.recorded(stored=(2,), variant=0)
    finish = world.run()
    assert finish.disposition is Disposition.DONE
    assert world.announced() == [EventKind.UPLOAD_RESUMED, EventKind.UPLOAD_STARTED]
    i = world.log.index(c.StartOver("part 2 on the server differs from the re-encoded bytes", 1))
    assert world.log[i - 3 : i] == [c.CloseParts(), world.commands(c.Abort)[0], c.DropRecord()]
    assert world.commands(c.Abort)[0].upload_id == old
    assert world.log[i + 1 : i + 3] == [c.CheckFile(), c.OpenSource(5)]  # no journal, no resume
    assert world.store.objects[KEY].data == world.object_bytes()


@pytest.mark.parametrize(("sha", "uploaded"), [(SHA, False), ("0" * 64, True)])
def test_an_object_already_stored_with_this_recording_is_not_uploaded_again(sha: str, uploaded: bool) -> None:
    world = World()
    world.existing(sha=sha)
    finish = world.run()
    assert finish.disposition is Disposition.DONE
    assert finish.uploaded is uploaded
    assert bool(world.commands(c.CreateUpload)) is uploaded
    if not uploaded:
        assert finish == c.Finish(Disposition.DONE, "already stored")


def test_dedup_off_never_looks() -> None:
    world = World()
    world.existing()
    finish = world.run(FileAttempt(AttemptConfig(8 * MiB, 5, dedup=False)))
    assert finish.uploaded
    assert not world.commands(c.CheckExisting)


def test_stray_uploads_of_the_key_are_aborted_and_no_others() -> None:
    world = World()
    stray, other = world.stray(), world.stray(key=KEY + ".other")
    assert world.run().uploaded
    assert [a.upload_id for a in world.commands(c.Abort)] == [stray]
    assert set(world.store.uploads) == {other}


def test_a_lost_create_response_leaves_a_stray_that_the_attempt_aborts() -> None:
    world = World()
    world.inject = lambda command: "lost" if isinstance(command, c.CreateUpload) else None
    assert world.run().uploaded
    assert len(world.store.completions) == 1
    assert [a.why for a in world.commands(c.Abort)] == ["stray upload of the key"]
    assert world.store.uploads == {}


def test_a_lost_complete_response_is_settled_by_head() -> None:
    world = World()
    world.inject = lambda command: "lost" if isinstance(command, c.Complete) else None
    finish = world.run()
    assert finish.uploaded
    assert not world.commands(c.StartOver)


def test_a_lost_part_response_sends_it_again_and_counts_the_retry() -> None:
    world = World()
    world.inject = first(c.CollectSends, "lost")
    finish = world.run()
    assert finish.uploaded
    assert finish.retries == 1
    assert world.store.calls.count("upload_part") == world.parts + 1
    assert world.store.objects[KEY].data == world.object_bytes()


def first(kind: type[Any], what: Fault | str) -> Callable[[c.Command], Fault | str | None]:
    """Inject ``what`` into the first command of ``kind``."""
    done: list[bool] = []

    def inject(command: c.Command) -> Fault | str | None:
        if isinstance(command, kind) and not done:
            done.append(True)
            return what
        return None

    return inject


def fresh(world: World) -> None:
    pass


def resumable(world: World) -> None:
    world.recorded(stored=(2,))


def file_changed(world: World) -> None:
    world.recorded(stored=(2,), fingerprint=(1, 2, 3))


def with_stray(world: World) -> None:
    world.stray()


# fmt: off
FAULT_TABLE = [
    # setup,       command,         fault,            disposition,          reason,                    restarts, kept
    (fresh,        c.CheckFile,     Fault.NOT_READY,  Disposition.DEFER,    "still being written",     0,        False),
    (fresh,        c.CheckFile,     Fault.VANISHED,   Disposition.REJECTED, "file vanished",           0,        False),
    (fresh,        c.OpenSource,    Fault.REJECTED,   Disposition.REJECTED, "injected rejected",       0,        False),
    (resumable,    c.OpenSource,    Fault.CHANGED,    Disposition.RETRY,    "changed while uploading", 0,        False),
    (fresh,        c.ReadPart,      Fault.CHANGED,    Disposition.RETRY,    "changed while uploading", 0,        False),
    (fresh,        c.ReadPart,      Fault.REJECTED,   Disposition.REJECTED, "injected rejected",       0,        True),
    (fresh,        c.ConfirmSource, Fault.CHANGED,    Disposition.RETRY,    "changed while uploading", 0,        False),
    (fresh,        c.SendPart,      Fault.STOPPED,    Disposition.STOPPED,  "engine stopped",          0,        True),
    (fresh,        c.CollectSends,  Fault.STOPPED,    Disposition.STOPPED,  "engine stopped",          0,        True),
    (fresh,        c.CreateUpload,  Fault.FATAL,      Disposition.RETRY,    "injected fatal",          0,        False),
    (fresh,        c.CreateUpload,  Fault.RETRYABLE,  Disposition.RETRY,    "injected retryable",      0,        False),
    (fresh,        c.CollectSends,  Fault.FATAL,      Disposition.RETRY,    "injected fatal",          0,        True),
    (fresh,        c.Complete,      Fault.RETRYABLE,  Disposition.RETRY,    "injected retryable",      0,        True),
    (fresh,        c.Head,          Fault.RETRYABLE,  Disposition.RETRY,    "injected retryable",      0,        True),
    (resumable,    c.ListParts,     Fault.RETRYABLE,  Disposition.RETRY,    "injected retryable",      0,        True),
    (file_changed, c.Abort,         Fault.STOPPED,    Disposition.STOPPED,  "engine stopped",          0,        True),
    (fresh,        c.CollectSends,  Fault.GONE,       Disposition.DONE,     "",                        1,        False),
    (fresh,        c.Complete,      "gone",           Disposition.DONE,     "",                        1,        False),
    (fresh,        c.Complete,      Fault.GONE,       Disposition.DONE,     "",                        1,        False),
    (fresh,        c.Head,          "corrupt",        Disposition.DONE,     "",                        1,        False),
    (with_stray,   c.Abort,         Fault.FATAL,      Disposition.DONE,     "",                        0,        False),
    (file_changed, c.Abort,         Fault.FATAL,      Disposition.DONE,     "",                        0,        False),
    (with_stray,   c.ListUploads,   Fault.FATAL,      Disposition.DONE,     "",                        0,        False),
    (with_stray,   c.ListUploads,   Fault.RETRYABLE,  Disposition.DONE,     "",                        0,        False),
    (fresh,        c.CheckExisting, Fault.UNEXPECTED, Disposition.DONE,     "",                        0,        False),
    (fresh,        c.CheckExisting, Fault.STOPPED,    Disposition.DONE,     "",                        0,        False),
]
# fmt: on


@pytest.mark.parametrize(("setup", "kind", "fault", "disposition", "reason", "restarts", "kept"), FAULT_TABLE)
def test_every_fault_has_its_outcome(
    setup: Callable[[World], None],
    kind: type[Any],
    fault: Fault | str,
    disposition: Disposition,
    reason: str,
    restarts: int,
    kept: bool,
) -> None:
    world = World()
    setup(world)
    world.inject = first(kind, fault)
    machine = FileAttempt(CONFIG)
    finish = world.run(machine)
    assert (finish.disposition, machine.restarts) == (disposition, restarts)
    assert finish.reason.startswith(reason)
    assert (world.journal.upload(PATH) is not None) is kept
    if disposition is Disposition.DONE:
        assert world.store.objects[KEY].data == world.object_bytes()


def test_a_change_while_sending_closes_the_parts_then_aborts_then_forgets() -> None:
    world = World(parts=4)
    world.inject = first(c.ReadPart, Fault.CHANGED)
    world.run()
    tail = world.log[-3:]
    assert tail[0] == c.CloseParts()
    assert isinstance(tail[1], c.Abort)
    assert tail[1].why.startswith("discarding it (changed while uploading")
    assert tail[2] == c.DropRecord()
    assert world.store.uploads == {}


def test_restarts_are_bounded() -> None:
    world = World()
    world.inject = lambda command: Fault.GONE if isinstance(command, c.CollectSends) else None
    machine = FileAttempt(CONFIG)
    finish = world.run(machine)
    assert finish.disposition is Disposition.RETRY
    assert finish.reason.startswith("gave up after 3 restarts: injected gone")
    assert [s.restarts for s in world.commands(c.StartOver)] == [1, 2]
    assert len(world.commands(c.CreateUpload)) == 3


def test_finish_is_final() -> None:
    world = World()
    machine = FileAttempt(CONFIG)
    finish = world.run(machine)
    assert machine.phase is Phase.FINISHED
    assert machine.next_command() is finish
    with pytest.raises(LocalProtocolError):
        machine.receive(c.Ok())
    with pytest.raises(LocalProtocolError):
        machine.receive(c.Failed(Fault.STOPPED, "late"))


@pytest.mark.parametrize(
    ("answers", "wrong"),
    [
        ([], c.RecordLoaded(None)),  # CheckFile answered with another command's result
        ([c.Ok(), c.RecordLoaded(None)], c.Ok()),
    ],
)
def test_a_wrong_answer_is_our_bug(answers: list[c.Result], wrong: c.Result) -> None:
    machine = FileAttempt(CONFIG)
    for result in answers:
        machine.receive(result)
    with pytest.raises(LocalProtocolError, match="does not answer"):
        machine.receive(wrong)


def test_none_sent_does_not_answer_a_wait() -> None:
    world = World()
    world.deliver = lambda: False  # no send finishes before the body is read
    machine = FileAttempt(CONFIG)
    while machine.next_command() != c.CollectSends(wait=True):
        machine.receive(world.answer(machine.next_command()))
    with pytest.raises(LocalProtocolError):
        machine.receive(c.NoneSent())


def test_every_fault_has_a_default_and_every_continue_an_answer() -> None:
    assert all((None, fault) in RULES for fault in Fault)
    assert all(rule.as_if is not None for rule in RULES.values() if rule.then is Then.CONTINUE)


# -- random faults -------------------------------------------------------------------------------------------
INJECTIONS = [None] * 12 + [*Fault, "lost", "gone", "corrupt"]
SETUPS = [fresh, resumable, file_changed, with_stray, lambda w: w.existing(), lambda w: w.existing(sha="1" * 64)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    injections=st.lists(st.sampled_from(INJECTIONS), max_size=80),
    deliveries=st.lists(st.booleans(), max_size=40),
    setup=st.sampled_from(SETUPS),
    parts=st.integers(1, 4),
    held=st.booleans(),
    varies=st.booleans(),
)
def test_random_faults_always_end_in_one_finish_within_bounds(
    injections: list[Fault | str | None],
    deliveries: list[bool],
    setup: Callable[[World], None],
    parts: int,
    held: bool,
    varies: bool,
) -> None:
    world = World(parts=parts, held=held, varies=varies)
    setup(world)
    feed, deliver = iter(injections), iter(deliveries)
    world.inject = lambda command: next(feed, None)
    world.deliver = lambda: next(deliver, True)
    machine = FileAttempt(CONFIG)
    finish = world.run(machine)

    assert machine.next_command() is finish  # exactly one Finish: final, nothing more is accepted
    with pytest.raises(LocalProtocolError):
        machine.receive(c.Ok())
    assert machine.restarts <= CONFIG.restarts_allowed + 1
    assert len(world.commands(c.StartOver)) == min(machine.restarts, CONFIG.restarts_allowed)
    assert finish.reason.startswith("gave up") is (machine.restarts > CONFIG.restarts_allowed)
    for key, _, completed in world.store.completions:  # never completed with a part missing or unacknowledged
        assert key == KEY
        assert [n for n, _ in completed] == list(range(1, parts + 1))
    assert_parts_closed_before_leaving(world.log, world.results)
    if finish.uploaded:
        assert world.store.objects[KEY].data == world.object_bytes()
        assert world.journal.upload(PATH) is None
    if not any(injections):
        assert finish.disposition is Disposition.DONE


def assert_parts_closed_before_leaving(log: list[c.Command], results: list[c.Result]) -> None:
    """Between a successful OpenParts and the next Abort / DropRecord / Complete / StartOver there is always a
    CloseParts (an OpenParts that failed opened nothing: the executor builds the parts or raises)."""
    open_ = False
    for command, result in zip(log, results, strict=True):
        if isinstance(command, c.OpenParts):
            assert not open_
            open_ = not isinstance(result, c.Failed)
        elif isinstance(command, c.CloseParts):
            open_ = False
        elif isinstance(command, c.Abort | c.DropRecord | c.Complete | c.StartOver):
            assert not open_, f"{command} while parts are open"
