"""Enumerations of the protocol that code without pydantic needs too (the upload engine's events).

Kept apart from ``messages`` so that importing them does not load pydantic: on a Pi every megabyte of
resident memory counts (docs/bench/transfer.md).
"""

from __future__ import annotations

from enum import StrEnum


class AgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class EventKind(StrEnum):
    UPLOAD_STARTED = "upload_started"
    UPLOAD_COMPLETED = "upload_completed"
    UPLOAD_FAILED = "upload_failed"
    UPLOAD_RESUMED = "upload_resumed"
    FILE_REJECTED = "file_rejected"
