"""Topics of the ``edgefleet/v1`` namespace as validated value objects (docs/design.md §2).

Agent ids are restricted to ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`` so they can never smuggle an MQTT
wildcard (``+``, ``#``) or a level separator into a topic, an ACL line or an object key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from fleet_protocol.errors import TopicError

NAMESPACE = "edgefleet/v1"
AGENT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_AGENT_ID_RE = re.compile(rf"^{AGENT_ID_PATTERN}$")


class AgentChannel(StrEnum):
    """The per-agent sub-topics; the value is the last topic level."""

    BIRTH = "birth"
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENTS = "events"
    ASSIGNMENT = "assignment"


#: Channels an agent publishes on (the rest it only reads).
AGENT_PUBLISHES = frozenset({AgentChannel.BIRTH, AgentChannel.STATE, AgentChannel.TELEMETRY, AgentChannel.EVENTS})

CONTROLLER_STATE_TOPIC = f"{NAMESPACE}/controller/state"


def validate_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not _AGENT_ID_RE.match(agent_id):
        raise TopicError(f"invalid agent id {agent_id!r}: must match {AGENT_ID_PATTERN}")
    return agent_id


@dataclass(frozen=True)
class AgentTopic:
    """``edgefleet/v1/agents/{agent_id}/{channel}``."""

    agent_id: str
    channel: AgentChannel

    def __post_init__(self) -> None:
        validate_agent_id(self.agent_id)
        object.__setattr__(self, "channel", AgentChannel(self.channel))

    def __str__(self) -> str:
        return f"{NAMESPACE}/agents/{self.agent_id}/{self.channel.value}"

    @classmethod
    def parse(cls, topic: str) -> AgentTopic:
        parts = topic.split("/")
        if len(parts) != 5 or "/".join(parts[:2]) != NAMESPACE or parts[2] != "agents":
            raise TopicError(f"not an edgefleet agent topic: {topic!r}")
        try:
            channel = AgentChannel(parts[4])
        except ValueError:
            raise TopicError(f"unknown agent channel {parts[4]!r} in {topic!r}") from None
        return cls(validate_agent_id(parts[3]), channel)


def agent_topic(agent_id: str, channel: AgentChannel | str) -> str:
    return str(AgentTopic(agent_id, AgentChannel(channel)))


def agent_filter(channel: AgentChannel | str, *, shared_group: str | None = None) -> str:
    """Subscription filter for one channel of every agent, optionally as an MQTT v5 shared subscription."""
    base = f"{NAMESPACE}/agents/+/{AgentChannel(channel).value}"
    return f"$share/{shared_group}/{base}" if shared_group else base


# -- queue control (docs/protocol.md, "Queue control") ---------------------------------------------------------
#: the replies of every requester live under here; the broker lets a requester read only its own subtree and an
#: agent write only the replies that carry its own id (docs/security.md, "Queue control")
REPLIES_PREFIX = f"{NAMESPACE}/replies"
QUEUE_REPLY_LEVEL = "queue"


def queue_request_topic(agent_id: str) -> str:
    """``edgefleet/v1/agents/{agent_id}/queue/request``: where a requester asks one agent about its queue."""
    return f"{NAMESPACE}/agents/{validate_agent_id(agent_id)}/queue/request"


def queue_reply_topic(requester: str, agent_id: str) -> str:
    """``edgefleet/v1/replies/{requester}/{agent_id}/queue``: the Response Topic a requester (its broker user
    name) sets for a queue request to ``agent_id``."""
    return f"{REPLIES_PREFIX}/{validate_agent_id(requester)}/{validate_agent_id(agent_id)}/{QUEUE_REPLY_LEVEL}"


def queue_reply_filter(requester: str) -> str:
    """What a requester subscribes to: the replies of every agent to it."""
    return f"{REPLIES_PREFIX}/{validate_agent_id(requester)}/+/{QUEUE_REPLY_LEVEL}"


def parse_queue_reply_topic(topic: str) -> tuple[str, str]:
    """(requester, agent id) of a queue reply topic; ``TopicError`` for anything else."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:3]) != REPLIES_PREFIX or parts[5] != QUEUE_REPLY_LEVEL:
        raise TopicError(f"not a queue reply topic: {topic!r}")
    return validate_agent_id(parts[3]), validate_agent_id(parts[4])
