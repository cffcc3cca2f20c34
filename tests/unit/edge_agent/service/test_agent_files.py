"""One bad file never stops the agent; any file name reaches the events as printable UTF-8 (service core)."""

from pathlib import Path

import pytest

from edge_agent.engine import EngineEvent
from edge_agent.service.ports import Verdict
from fleet_base.filenames import parse_display_name
from fleet_protocol.codec import encode
from fleet_protocol.messages import Event, Telemetry
from fleet_protocol.vocabulary import EventKind
from tests.oddnames import ODD_NAMES, odd_str
from tests.unit.edge_agent.service.fakes import FakeCheck, FakeEngine
from tests.unit.edge_agent.service.test_agent import World, completed


class PickyEngine(FakeEngine):
    """Raises for the files named in ``broken`` (as the journal did for a name that was not UTF-8)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: dict[str, Exception] = {}

    def enqueue(self, path: Path) -> bool:
        if path.name in self.broken:
            raise self.broken[path.name]
        return super().enqueue(path)


class ExplodingCheck(FakeCheck):
    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def __call__(self, path: Path) -> tuple[Verdict, str]:
        if path.name in self.names:
            raise RuntimeError(f"codec bug on {path}")
        return super().__call__(path)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.engine = PickyEngine()
    w.service = w.new_service()
    w.service.start(now=0)
    return w


def test_every_odd_name_is_queued_and_rejections_name_it_in_printable_utf8(world):
    paths = {raw: world.write(odd_str(raw)) for raw in ODD_NAMES.values()}
    rejected = odd_str(ODD_NAMES["control characters"])
    world.check.verdicts[rejected] = (Verdict.REJECTED, f"{paths[ODD_NAMES['control characters']]}: truncated")
    world.service.tick(0)
    world.service.tick(10)
    assert sorted(p.name for p in world.engine.queued) == sorted(
        n for n in map(odd_str, ODD_NAMES.values()) if n != rejected
    )
    [event] = world.publisher.of(Event)
    encode(event)  # valid JSON in UTF-8
    assert event.file == "ctrl\\u0001\\u001b[31m\\u007f.wav"
    assert parse_display_name(event.file) == ODD_NAMES["control characters"]
    assert "\\u001b" in event.reason


def test_an_unexpected_error_on_one_file_sets_it_aside_and_the_others_go_on(world, caplog):
    bad = odd_str(ODD_NAMES["not UTF-8"])
    world.write(bad)
    good = world.write("good.wav")
    world.engine.broken[bad] = UnicodeEncodeError("utf-8", bad, 3, 4, "surrogates not allowed")
    world.service.tick(0)
    world.service.tick(10)
    assert world.engine.queued == [good]
    assert world.service.counters.file_errors == 1
    [event] = world.publisher.of(Event)
    assert (event.kind, event.file) == (EventKind.UPLOAD_FAILED, "rec\\xff\\xfe.wav")
    assert "set aside" in event.reason
    encode(event)
    assert "rec\\xff\\xfe.wav: unexpected error" in caplog.text
    world.service.tick(20)  # the next telemetry counts it with the engine's errors
    assert world.publisher.of(Telemetry)[-1].errors_total == 1
    world.service.tick(39)  # set aside for 30 s, then offered again
    assert world.service.counters.file_errors == 1
    del world.engine.broken[bad]
    world.service.tick(40)
    assert [p.name for p in world.engine.queued] == ["good.wav", bad]


def test_a_codec_bug_on_one_file_is_contained_too(tmp_path):
    w = World(tmp_path)
    w.check = ExplodingCheck({"boom.wav"})
    w.service = w.new_service()
    w.service.start(now=0)
    w.write("boom.wav")
    w.write("fine.wav")
    w.service.tick(0)
    w.service.tick(10)
    assert [p.name for p in w.engine.queued] == ["fine.wav"]
    assert w.service.counters.file_errors == 1


def test_a_restart_with_an_odd_name_in_the_ledger_starts_and_goes_on(world):
    bad = odd_str(ODD_NAMES["not UTF-8"])
    path = world.write(bad)
    world.write("other.wav")
    world.service.tick(0)
    world.service.tick(10)
    world.service.stop(1)
    world.engine.broken[bad] = ValueError("journal refuses it")
    again = world.new_service()
    again.start(now=100)  # re-offers the queued files: one fails, the start does not
    assert again.counters.file_errors == 1
    assert world.engine.calls.count(world.config.spool_dir / "other.wav") == 2
    del world.engine.broken[bad]
    again.handle_engine_event(completed(path))
    assert not path.exists()  # retention of the odd name worked
    assert again.publisher.of(Event)[-1].file == "rec\\xff\\xfe.wav"


def test_a_failing_event_handler_never_escapes(world, caplog):
    class Broken:
        def publish(self, message: object) -> None:
            raise RuntimeError("publisher bug")

    world.service.publisher = Broken()
    world.service.handle_engine_event(EngineEvent(EventKind.UPLOAD_STARTED, str(world.write("x.wav"))))
    assert world.service.counters.file_errors == 1
    assert "publisher bug" in caplog.text
