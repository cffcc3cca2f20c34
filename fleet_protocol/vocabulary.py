"""Enumerations of the protocol that code without pydantic needs too (the upload engine's events, the firmware's
throttle bits that the policy, the dashboard and the simulator read).

Kept apart from ``messages`` so that importing them does not load pydantic: on a Pi every megabyte of
resident memory counts (docs/bench/transfer.md).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class AgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class EventKind(StrEnum):
    UPLOAD_STARTED = "upload_started"
    UPLOAD_COMPLETED = "upload_completed"
    UPLOAD_FAILED = "upload_failed"
    UPLOAD_RESUMED = "upload_resumed"
    FILE_REJECTED = "file_rejected"
    #: the agent's spool disk has less free space than its threshold (sent once per crossing; no file)
    DISK_LOW = "disk_low"


#: What an event ``kind`` may be on the wire: the known kinds above and any kind a newer sender adds
#: (docs/protocol.md, "Compatibility"). 32 characters is the store's column width.
MAX_EVENT_KIND_CHARS = 32
EVENT_KIND_PATTERN = rf"^[a-z][a-z0-9_]{{0,{MAX_EVENT_KIND_CHARS - 1}}}$"


def known_event_kind(kind: str) -> EventKind | None:
    """The ``EventKind`` of ``kind``, or None when this release does not know it (a newer sender's kind)."""
    try:
        return EventKind(kind)
    except ValueError:
        return None


def event_kind_label(kind: str) -> str:
    """How a kind is shown: its name when known, ``unknown (<kind>)`` when a newer sender sent it."""
    return kind if known_event_kind(kind) is not None else f"unknown ({kind})"


class QueueAction(StrEnum):
    """What a queue request asks an agent (docs/protocol.md, "Queue control")."""

    LIST = "list"  # the queue as it stands: nothing changes
    RETRY = "retry"  # retry now: the file's backoff is cleared
    PRIORITIZE = "prioritize"  # upload this first: to the front of the queue (the backoff cleared too)
    HOLD = "hold"  # never taken until released (survives a restart)
    RELEASE = "release"  # back in the queue where its priority puts it


#: the actions that change the queue (every one names a file)
QUEUE_CHANGES = frozenset({QueueAction.RETRY, QueueAction.PRIORITIZE, QueueAction.HOLD, QueueAction.RELEASE})


class QueueState(StrEnum):
    """Where a queued file stands, as a queue reply lists it."""

    UPLOADING = "uploading"  # an attempt is running
    QUEUED = "queued"  # waiting for its turn
    WAITING = "waiting"  # failed before: not taken again before its retry time
    HELD = "held"  # held by an operator: never taken until released


class ThrottleBit(IntEnum):
    """The bits of ``Telemetry.throttled``: the mask ``vcgencmd get_throttled`` prints. These four mean "now";
    each also sets its sticky "has occurred since boot" bit, the same bit shifted by ``STICKY_SHIFT``.
    (An ``IntEnum``, not an ``IntFlag``: ``mask & bit`` stays a plain, fast ``int``.)"""

    UNDER_VOLTAGE = 1 << 0
    FREQUENCY_CAPPED = 1 << 1
    THROTTLED = 1 << 2
    SOFT_TEMP_LIMIT = 1 << 3


STICKY_SHIFT = 16
#: every "now" bit
THROTTLED_NOW = sum(ThrottleBit)
_WORDS = (
    (ThrottleBit.UNDER_VOLTAGE, "under-voltage"),
    (ThrottleBit.FREQUENCY_CAPPED, "frequency capped"),
    (ThrottleBit.THROTTLED, "throttled"),
    (ThrottleBit.SOFT_TEMP_LIMIT, "soft temperature limit"),
)


def throttle_words(mask: int) -> list[str]:
    """Human words for the "now" bits set in ``mask``, in bit order."""
    if not mask & THROTTLED_NOW:  # the usual case, for every agent on every read
        return []
    return [word for bit, word in _WORDS if mask & bit]


def throttle_history_words(mask: int) -> list[str]:
    """Human words for the sticky "has occurred since boot" bits set in ``mask``."""
    return throttle_words(mask >> STICKY_SHIFT)
