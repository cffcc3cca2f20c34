"""The agent's side of queue control (edge_agent.service.queue_control) over a real journal: requests in,
replies out; marks that survive a restart; nothing a requester sends can raise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.queue import after_failure
from edge_agent.service.queue_control import ControlledJournal, QueueController, QueueMarks, QueueRequests, Uploading
from edge_agent.transfer.journal import DONE, Journal
from fleet_protocol.codec import decode_queue_reply, encode
from fleet_protocol.messages import MAX_PAYLOAD_BYTES, QueueRequest
from fleet_protocol.topics import queue_reply_topic
from fleet_protocol.vocabulary import EventKind, QueueAction, QueueState

AGENT = "pi-q"
REPLY_TO = queue_reply_topic("dash", AGENT)
NOW = 1000.0


def _open(state: Path) -> tuple[ControlledJournal, QueueRequests, Uploading]:
    journal = ControlledJournal(Journal(state / "journal.db"), QueueMarks(state / "marks.db"))
    uploading = Uploading()
    return journal, QueueRequests(AGENT, QueueController(journal, uploading, clock=lambda: NOW)), uploading


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[ControlledJournal, QueueRequests, Uploading]]:
    journal, requests, uploading = _open(tmp_path)
    for i, name in enumerate(["a.wav", "b.wav", "c.wav"], start=1):
        journal.enqueue(f"/spool/{name}", i * 100, 0, 0.0, recheck=False)
    yield journal, requests, uploading
    journal.close()


def _ask(requests: QueueRequests, action: QueueAction, file: str = "") -> dict[str, Any]:
    """The reply as JSON (``model_dump(mode="json")``)."""
    request = QueueRequest(request_id="r1", action=action, file=file)
    reply = requests.handle(encode(request), REPLY_TO, b"corr")
    assert reply is not None
    assert (reply.topic, reply.correlation) == (REPLY_TO, b"corr")
    return decode_queue_reply(reply.payload, AGENT).model_dump(mode="json")


def _states(reply: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["file"], e["state"]) for e in reply["entries"]]


def test_list_retry_hold_release(agent: tuple[ControlledJournal, QueueRequests, Uploading]) -> None:
    journal, requests, uploading = agent
    (b,) = [e for e in journal.queued() if e.path == "/spool/b.wav"]
    journal.update_entry(after_failure(b, NOW), "S3 unreachable")
    uploading.observe(EngineEvent(EventKind.UPLOAD_STARTED, "/spool/c.wav"))
    listed = _ask(requests, QueueAction.LIST)
    assert _states(listed) == [("c.wav", "uploading"), ("a.wav", "queued"), ("b.wav", "waiting")]
    assert listed["entries"][2]["last_error"] == "S3 unreachable"
    assert listed["entries"][2]["retries"] == 1
    assert _states(_ask(requests, QueueAction.RETRY, "b.wav"))[1:] == [("a.wav", "queued"), ("b.wav", "queued")]
    assert _states(_ask(requests, QueueAction.HOLD, "a.wav"))[-1] == ("a.wav", "held")
    uploading.observe(EngineEvent(EventKind.UPLOAD_COMPLETED, "/spool/c.wav"))
    released = _ask(requests, QueueAction.RELEASE, "a.wav")
    assert _states(released) == [("a.wav", "queued"), ("c.wav", "queued"), ("b.wav", "queued")]  # b: its failure
    assert requests.counters.answered == 4


def test_a_hold_survives_a_restart_and_ends_with_the_file(tmp_path: Path) -> None:
    journal, requests, _ = _open(tmp_path)
    journal.enqueue("/spool/a.wav", 10, 0, 0.0, recheck=False)
    _ask(requests, QueueAction.HOLD, "a.wav")
    _ask(requests, QueueAction.PRIORITIZE, "a.wav")
    journal.close()
    journal, requests, _ = _open(tmp_path)
    (entry,) = journal.queued()
    assert (entry.held, entry.first) == (True, 1)
    journal.finish_entry("/spool/a.wav", DONE, "k", "")
    journal.enqueue("/spool/a.wav", 11, 1, 5.0, recheck=False)  # a new recording under the same name
    (entry,) = journal.queued()
    assert (entry.held, entry.first) == (False, 0)
    journal.close()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 1, "request_id": "r", "action": "explode"}', "action"),
        (b'{"v": 1, "request_id": "r", "action": "hold"}', "needs a file"),
        (b'{"v": 1, "request_id": "bad id!", "action": "list"}', "request_id"),
        (encode(QueueRequest(request_id="r", action=QueueAction.HOLD, file="gone.wav")), "no such file"),
    ],
)
def test_a_bad_request_gets_an_error_reply(
    agent: tuple[ControlledJournal, QueueRequests, Uploading], payload: bytes, fragment: str
) -> None:
    _, requests, _ = agent
    reply = requests.handle(payload, REPLY_TO, None)
    assert reply is not None
    answer = json.loads(reply.payload)
    assert answer["ok"] is False
    assert fragment in answer["error"]
    assert requests.counters.refused == 1


@pytest.mark.parametrize(
    "response_topic",
    [None, "", "edgefleet/v1/agents/pi-q/events", queue_reply_topic("dash", "pi-other"), "edgefleet/v1/replies/#/x"],
)
def test_a_request_without_a_usable_response_topic_is_dropped_and_counted(
    agent: tuple[ControlledJournal, QueueRequests, Uploading], response_topic: str | None
) -> None:
    _, requests, _ = agent
    assert requests.handle(encode(QueueRequest(request_id="r", action=QueueAction.LIST)), response_topic, b"x") is None
    assert requests.counters.dropped == 1


def test_an_agent_without_queue_control_says_so() -> None:
    reply = QueueRequests(AGENT, None).handle(
        encode(QueueRequest(request_id="r", action=QueueAction.LIST)), REPLY_TO, b""
    )
    assert reply is not None
    assert "not available" in json.loads(reply.payload)["error"]


def test_a_long_queue_is_cut_to_the_payload_limit(tmp_path: Path) -> None:
    journal, requests, _ = _open(tmp_path)
    for i in range(260):
        journal.enqueue(f"/spool/{'n' * 900}-{i:03d}.wav", 10, 0, float(i), recheck=False)
    reply = requests.handle(encode(QueueRequest(request_id="r", action=QueueAction.LIST)), REPLY_TO, None)
    assert reply is not None
    assert len(reply.payload) <= MAX_PAYLOAD_BYTES
    answer = decode_queue_reply(reply.payload, AGENT)
    assert answer.total == 260
    assert 0 < len(answer.entries) < 200
    assert all(e.state is QueueState.QUEUED for e in answer.entries)
    journal.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300) | st.text(max_size=300).map(str.encode), topic=st.none() | st.text(max_size=80))
def test_nothing_a_requester_sends_raises(
    agent: tuple[ControlledJournal, QueueRequests, Uploading], payload: bytes, topic: str | None
) -> None:
    _, requests, _ = agent
    requests.handle(payload, topic, None)
    requests.handle(payload, REPLY_TO, payload)
