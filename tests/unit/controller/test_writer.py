"""BatchWriter: what is stored, dead-lettered, acknowledged or left for redelivery, with a fake store (no
database, no sleeping: the retry delay is recorded, not slept)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from controller.service.inbox import Ingestor, Received
from controller.service.writer import BatchWriter, Retry
from controller.store.agent_writes import IngestBatch
from fleet_protocol.codec import encode
from fleet_protocol.messages import Event
from fleet_protocol.topics import agent_topic
from fleet_protocol.vocabulary import EventKind


def outage() -> Exception:
    return OperationalError("INSERT", {}, Exception("connection refused"))


def data_error() -> Exception:
    return DataError("INSERT", {}, Exception("bigint out of range"))


@dataclass
class FakeStore:
    """Fails a write that holds a poisoned file (its data) or while ``down`` (an outage)."""

    poison: set[str] = field(default_factory=set)
    error: type[Exception] | None = None  # what a poisoned write raises (None: a DataError)
    down: int = 0  # the next ``down`` writes fail with an outage
    dead_letter_error: Callable[[], Exception] | None = None
    stored: list[str] = field(default_factory=list)
    writes: int = 0
    dead: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, batch: IngestBatch) -> None:
        self.writes += 1
        if self.down > 0:
            self.down -= 1
            raise outage()
        files = [event.file for event, _at in batch.events]
        if self.poison & set(files):
            raise self.error("poisoned") if self.error else data_error()
        self.stored += files

    def dead_letter(self, item: Received, reason: str, error: str) -> None:
        if self.dead_letter_error is not None:
            raise self.dead_letter_error()
        self.dead.append((item.payload.decode(), reason))


@dataclass
class Setup:
    store: FakeStore
    ingestor: Ingestor
    writer: BatchWriter
    acked: list[str]
    slept: list[float]

    def offer(self, *files: str) -> IngestBatch:
        for name in files:
            event = Event(agent_id="pi-1", seq=1, kind=EventKind.UPLOAD_FAILED, file=name)
            self.ingestor.offer(agent_topic("pi-1", event.channel), encode(event), 1_000.0, self._ack(name))
        return self.ingestor.drain(timeout=0.1)

    def _ack(self, name: str) -> Callable[[], None]:
        return lambda: self.acked.append(name)

    def dead_files(self) -> list[str]:
        return sorted(payload.split('"file":"')[1].split('"')[0] for payload, _r in self.store.dead)


def setup(store: FakeStore | None = None) -> Setup:
    store = store or FakeStore()
    ingestor = Ingestor()
    slept: list[float] = []
    writer = BatchWriter(ingestor, store, store.dead_letter, retry=Retry(attempts=3), sleep=slept.append)
    return Setup(store, ingestor, writer, [], slept)


def test_a_good_batch_is_stored_in_one_write_and_acknowledged() -> None:
    s = setup()
    s.writer.write(s.offer("a", "b", "c"))
    assert (s.store.stored, s.store.writes, sorted(s.acked)) == (["a", "b", "c"], 1, ["a", "b", "c"])
    assert s.ingestor.stats.stored == 3


@pytest.mark.parametrize(
    ("files", "poison", "error"),
    [
        (["a"], {"a"}, None),
        (["a", "bad", "c"], {"bad"}, None),
        (["bad", "b", "c", "d", "e"], {"bad"}, IntegrityError),
        ([f"f{i}" for i in range(33)], {"f7", "f31"}, OverflowError),  # SQLite: an int too large
        (["x", "y"], {"x", "y"}, ValueError),  # any exception, not only database errors
        (["a", "b"], {"b"}, KeyError),
    ],
)
def test_a_message_that_fails_for_its_data_is_dead_lettered_and_acknowledged_the_others_stored(
    files: list[str], poison: set[str], error: type[Exception] | None
) -> None:
    s = setup(FakeStore(poison=poison, error=error))
    s.writer.write(s.offer(*files))
    assert sorted(s.store.stored) == sorted(set(files) - poison)
    assert s.dead_files() == sorted(poison)
    assert {reason for _p, reason in s.store.dead} == {"events:Unstorable"}
    assert sorted(s.acked) == sorted(files)  # every one: a bad one would fail again if delivered again
    stats = s.ingestor.stats
    assert (stats.dead_lettered, stats.deferred, stats.stored) == (len(poison), 0, len(files) - len(poison))
    assert stats.rejected_by == {"events:Unstorable": len(poison)}
    assert stats.received == len(files)  # isolating decodes again without counting again
    assert s.slept == []  # a data error is not retried as a whole


def test_one_poison_message_in_a_large_batch_costs_about_log2_writes() -> None:
    files = [f"f{i}" for i in range(1024)]
    s = setup(FakeStore(poison={"f600"}))
    s.writer.write(s.offer(*files))
    assert len(s.store.stored) == 1023
    assert s.store.writes <= 1 + 2 * 10


def test_a_database_outage_is_retried_then_left_unacknowledged_for_redelivery() -> None:
    s = setup(FakeStore(down=3))
    s.writer.write(s.offer("a", "b"))
    assert (s.store.stored, s.acked, s.store.dead) == ([], [], [])
    assert s.ingestor.stats.deferred == 2
    assert s.slept == [0.5, 1.0]  # three attempts, growing pauses between them


def test_an_outage_that_ends_within_the_retries_loses_nothing() -> None:
    s = setup(FakeStore(down=2))
    s.writer.write(s.offer("a", "b"))
    assert (s.store.stored, sorted(s.acked)) == (["a", "b"], ["a", "b"])
    assert s.ingestor.stats.deferred == 0


def test_an_outage_while_isolating_leaves_the_unsettled_rest_unacknowledged() -> None:
    store = FakeStore(poison={"a"})
    s = setup(store)
    batch = s.offer("a", "b", "c", "d")
    real = store.__call__
    calls = 0

    def first_half_then_down(b: IngestBatch) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # whole batch, first half (a, b), then a alone… the database goes away at b
            store.down = 99
        real(b)

    s.writer.store = first_half_then_down
    s.writer.write(batch)
    assert s.dead_files() == ["a"]
    assert s.acked == ["a"]  # b, c and d: not stored, not acknowledged
    assert s.ingestor.stats.deferred == 3


@pytest.mark.parametrize(("dead_letter_error", "stored"), [(outage, []), (data_error, ["good"])])
def test_a_dead_letter_the_database_refuses_too_is_not_acknowledged(dead_letter_error: Any, stored: list[str]) -> None:
    """The database took neither the message nor its dead letter: not surely the message's fault. An outage
    defers the rest too; another error only that message."""
    store = FakeStore(poison={"bad"}, dead_letter_error=dead_letter_error)
    s = setup(store)
    s.writer.write(s.offer("bad", "good"))
    assert s.store.stored == stored
    assert s.acked == stored
    assert (s.ingestor.stats.dead_lettered, s.ingestor.stats.deferred) == (0, 2 - len(stored))


def test_a_failing_acknowledgement_does_not_stop_the_others() -> None:
    s = setup()
    batch = s.offer("a", "b")

    def broken() -> None:
        raise RuntimeError("connection lost")

    batch.acks.insert(0, broken)
    s.writer.write(batch)
    assert sorted(s.acked) == ["a", "b"]


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=60),
    poison=st.sets(st.integers(min_value=0, max_value=59), max_size=8),
)
def test_every_message_is_stored_once_or_dead_lettered_and_all_are_acknowledged(size: int, poison: set[int]) -> None:
    files = [f"f{i}" for i in range(size)]
    bad = {f"f{i}" for i in poison if i < size}
    s = setup(FakeStore(poison=bad))
    s.writer.write(s.offer(*files))
    assert sorted(s.store.stored) == sorted(set(files) - bad)  # each once
    assert s.dead_files() == sorted(bad)
    assert sorted(s.acked) == sorted(files)
