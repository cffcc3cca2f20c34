"""Queue control on the wire: the request/reply topics and the two messages' rules (fleet_protocol)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_protocol.codec import decode_queue_reply, decode_queue_request, encode
from fleet_protocol.errors import PayloadError, TopicError
from fleet_protocol.messages import MAX_QUEUE_ENTRIES, QueueItem, QueueReply, QueueRequest
from fleet_protocol.topics import (
    AGENT_ID_PATTERN,
    AgentTopic,
    parse_queue_reply_topic,
    queue_reply_filter,
    queue_reply_topic,
    queue_request_topic,
)
from fleet_protocol.vocabulary import QUEUE_CHANGES, QueueAction

IDS = st.from_regex(f"^{AGENT_ID_PATTERN}$", fullmatch=True)


def test_the_topics() -> None:
    assert queue_request_topic("pi-1") == "edgefleet/v1/agents/pi-1/queue/request"
    assert queue_reply_topic("dash", "pi-1") == "edgefleet/v1/replies/dash/pi-1/queue"
    assert queue_reply_filter("dash") == "edgefleet/v1/replies/dash/+/queue"
    with pytest.raises(TopicError):
        AgentTopic.parse(queue_request_topic("pi-1"))  # never mistaken for an agent channel


@given(requester=IDS, agent=IDS)
def test_a_reply_topic_parses_back(requester: str, agent: str) -> None:
    assert parse_queue_reply_topic(queue_reply_topic(requester, agent)) == (requester, agent)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "edgefleet/v1/replies/dash/pi-1",
        "edgefleet/v1/replies/dash/pi-1/queue/x",
        "edgefleet/v1/replies/+/pi-1/queue",
        "edgefleet/v1/replies/dash/#/queue",
        "edgefleet/v2/replies/dash/pi-1/queue",
        "edgefleet/v1/agents/dash/pi-1/queue",
        "edgefleet/v1/replies/dash/pi-1/events",
    ],
)
def test_anything_else_is_not_a_reply_topic(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_queue_reply_topic(topic)


@pytest.mark.parametrize("action", sorted(QUEUE_CHANGES))
def test_a_change_needs_a_file(action: QueueAction) -> None:
    with pytest.raises(PayloadError, match="needs a file"):
        decode_queue_request(json.dumps({"v": 1, "request_id": "r", "action": action.value}).encode())
    assert decode_queue_request(encode(QueueRequest(request_id="r", action=action, file="a.wav"))).file == "a.wav"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "r" * 65}, "request_id"),
        ({"request_id": "a/b"}, "request_id"),
        ({"action": "delete"}, "action"),
        ({"file": "a\x00b"}, "file"),
        ({"file": "f" * 1025}, "file"),
        ({"requested_by": "x" * 129}, "requested_by"),
        ({"v": 2}, "schema version"),
    ],
)
def test_a_bad_request_is_refused(changes: dict[str, object], fragment: str) -> None:
    data = {"v": 1, "request_id": "r", "action": "list", **changes}
    with pytest.raises(PayloadError, match=fragment):
        decode_queue_request(json.dumps(data).encode())


def test_a_reply_is_from_the_agent_its_topic_names() -> None:
    reply = QueueReply(agent_id="pi-1", request_id="r", action=QueueAction.LIST, ok=True, total=3)
    assert decode_queue_reply(encode(reply), "pi-1") == reply
    with pytest.raises(PayloadError, match="does not match"):
        decode_queue_reply(encode(reply), "pi-2")


def test_a_reply_holds_at_most_the_bound() -> None:
    items = [QueueItem(file=f"{i}.wav").model_dump(mode="json") for i in range(MAX_QUEUE_ENTRIES + 1)]
    data = {"v": 1, "agent_id": "pi-1", "request_id": "r", "action": "list", "ok": True, "entries": items}
    with pytest.raises(PayloadError, match="entries"):
        decode_queue_reply(json.dumps(data).encode(), "pi-1")
    data["entries"] = items[:MAX_QUEUE_ENTRIES]
    assert len(decode_queue_reply(json.dumps(data).encode(), "pi-1").entries) == MAX_QUEUE_ENTRIES
