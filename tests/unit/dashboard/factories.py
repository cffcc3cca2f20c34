"""Small builders of read-model values for the pure tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboard.readmodel import AgentRow, AssignmentView
from fleet_protocol.vocabulary import throttle_words

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def assignment(**overrides: Any) -> AssignmentView:
    values: dict[str, Any] = {
        "version": 1,
        "concurrency": 2,
        "part_size": 8 << 20,
        "windows": [],
        "bandwidth_bps": 0,
        "compression_level": 5,
        "paused": False,
        "upload_now": False,
        "reason": "normal",
        "at": NOW,
    }
    values.update(overrides)
    return AssignmentView(**values)


def row(agent_id: str = "pi-01", **overrides: Any) -> AgentRow:
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "site": "garden",
        "model": "Raspberry Pi 4",
        "online": True,
        "status_since": NOW,
        "last_seen": NOW,
        "temperature_c": 50.0,
        "throttled": 0,
        "backlog_files": 1,
        "backlog_bytes": 100,
        "backlog_oldest_age_s": 10.0,
        "throughput_bps": 1000.0,
        "active_uploads": 1,
        "errors_total": 0,
        "retries_total": 0,
        "bytes_uploaded_total": 0,
        "applied_version": 1,
        "assignment": assignment(),
    }
    values.update(overrides)
    values["throttle_flags"] = throttle_words(values["throttled"])
    return AgentRow(**values)
