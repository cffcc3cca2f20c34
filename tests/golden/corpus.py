"""The golden corpus: every message kind exactly as a release sends it, written by the real encoder.

``tests/golden/<release>/<channel>[.<variant>].json`` holds the bytes ``fleet_protocol.codec.encode`` gives for
the fixed inputs of ``messages()`` (``<release>`` is ``fleet_base.__version__``). The files of every release
stay committed forever: every later release must decode all of them, and the previous release's decoder must
accept the current ones (``tests/unit/fleet_protocol/test_golden.py``; the rules in docs/protocol.md,
"Compatibility").

``python -m tests.golden.corpus`` writes the corpus of the current release. Run it when a message kind is
added or the encoder's output changes: on an unreleased version it rewrites that version's files, after a
release bump ``fleet_base.__version__`` first so that the released corpus stays as it was sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fleet_base import __version__
from fleet_protocol.codec import encode
from fleet_protocol.messages import Assignment, Birth, ControllerState, Event, State, Telemetry
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind

if TYPE_CHECKING:  # only for the annotations: an older release's fleet_protocol has no queue messages
    from fleet_protocol.messages import Message, QueueReply, QueueRequest

GOLDEN_DIR = Path(__file__).parent
CONTROLLER_STATE = "controller_state"
QUEUE_REQUEST = "queue_request"
QUEUE_REPLY = "queue_reply"
#: the topics the queue messages travel on, spelt out: ``tests.golden.decode`` imports this module with an older
#: release's ``fleet_protocol``, which has no queue topics (its decoder refuses these: not an agent topic)
_QUEUE_TOPICS = {
    QUEUE_REQUEST: "edgefleet/v1/agents/{agent}/queue/request",
    QUEUE_REPLY: "edgefleet/v1/replies/dashboard/{agent}/queue",
}
AGENT = "pi-golden-01"
AT = datetime(2026, 12, 3, 12, 0, 0, 250000, tzinfo=UTC)
_KEY = "field/pi-golden-01/2026/12/03/rec-0001.flac"
_SHA = "0123456789abcdef" * 4

#: per event kind, what its sender fills in (the rest stays at the defaults)
_EVENT_VALUES: dict[str, dict[str, Any]] = {
    "upload_started": {"file": "rec-0001.wav", "key": _KEY, "original_bytes": 96_000_044},
    "upload_resumed": {"file": "rec-0001.wav", "key": _KEY, "retries": 2, "reason": "3 parts already stored"},
    "upload_completed": {
        "file": "rec-0001.wav",
        "key": _KEY,
        "original_bytes": 96_000_044,
        "stored_bytes": 51_234_567,
        "original_sha256": _SHA,
        "stored_as": "flac",
        "duration_s": 12.5,
        "retries": 1,
    },
    "upload_failed": {"file": "rec-0002.wav", "retries": 5, "reason": "S3 unreachable: connection refused"},
    "file_rejected": {"file": "broken.wav", "original_bytes": 44, "reason": "not a WAV file: no RIFF header"},
    "disk_low": {"file": "", "reason": "spool disk: 411.5 MiB free, below the threshold of 512.0 MiB"},
}


def _event(seq: int, kind: EventKind) -> Event:
    return Event(agent_id=AGENT, seq=seq, sent_at=AT, kind=kind, **_EVENT_VALUES.get(kind.value, {"file": ""}))


def _queue_messages() -> dict[str, BaseModel]:
    """The queue request and its reply (imported here: older releases' ``fleet_protocol`` lack them)."""
    from fleet_protocol.messages import QueueItem, QueueReply, QueueRequest
    from fleet_protocol.vocabulary import QueueAction, QueueState

    request = QueueRequest(
        request_id="req-0001", action=QueueAction.HOLD, file="rec-0002.wav", requested_by="alice", sent_at=AT
    )
    entries = [
        QueueItem(file="rec-0001.wav", size=96_000_044, state=QueueState.UPLOADING, first=True),
        QueueItem(
            file="rec-0002.wav",
            size=48_000_044,
            state=QueueState.WAITING,
            retries=2,
            last_error="S3 unreachable: connection refused",
            retry_in_s=57.5,
        ),
        QueueItem(file="rec-0003.wav", size=1_000_044, state=QueueState.HELD),
    ]
    reply = QueueReply(
        agent_id=AGENT,
        request_id="req-0001",
        action=QueueAction.HOLD,
        ok=False,
        error="no such file in the queue: rec-0009.wav",
        entries=entries,
        total=250,
        sent_at=AT,
    )
    return {QUEUE_REQUEST: request, QUEUE_REPLY: reply}


def messages() -> dict[str, BaseModel]:
    """Every message kind this release sends, by corpus name; every field set away from its default."""
    found: dict[str, BaseModel] = {
        "birth": Birth(
            agent_id=AGENT,
            seq=0,
            sent_at=AT,
            model="Raspberry Pi 4 Model B Rev 1.4",
            cores=4,
            ram_bytes=4 << 30,
            disk_bytes=64 << 30,
            software_version=__version__,
            flac_encode_bps=21.5e6,
            bucket="recordings",
            prefix="field",
            site="north-barn",
            simulated=True,
            encode_bps_by_level=[40.1e6, 35.2e6, 30.3e6, 26.4e6, 24.5e6, 21.5e6, 15.6e6, 13.7e6, 12.3e6],
            compression_ratio_by_level=[0.8, 0.79, 0.78, 0.72, 0.7, 0.649, 0.646, 0.644, 0.636],
            encode_cores=3.5,
            memory_limit_bytes=256 << 20,
            baseline_rss_bytes=63 << 20,
        ),
        "state.online": State(agent_id=AGENT, seq=1, sent_at=AT, state=AgentStatus.ONLINE),
        "state.offline": State(agent_id=AGENT, seq=2, sent_at=AT, state=AgentStatus.OFFLINE),
        "telemetry": Telemetry(
            agent_id=AGENT,
            seq=3,
            sent_at=AT,
            temperature_c=71.5,
            throttled=0x50005,
            cpu_percent=87.5,
            mem_available_bytes=1 << 30,
            disk_free_bytes=9 << 30,
            backlog_files=3,
            backlog_bytes=3 << 30,
            backlog_oldest_age_s=3600.5,
            active_uploads=2,
            throughput_bps=1.9e6,
            bytes_uploaded_total=123 << 30,
            retries_total=17,
            errors_total=4,
            assignment_version=7,
            backlog_eta_s=1695.5,
            mqtt_rtt_s=0.012,
            s3_ttfb_s=0.034,
            process_cpu_percent=42.5,
            process_rss_bytes=123 << 20,
            encode_bps_by_level=[0.0, 0.0, 0.0, 0.0, 0.0, 20.5e6, 0.0, 0.0, 12.0e6],
            compression_ratio_by_level=[0.0, 0.0, 0.0, 0.0, 0.0, 0.652, 0.0, 0.0, 0.638],
        ),
        "assignment": Assignment(
            agent_id=AGENT,
            seq=11,
            sent_at=AT,
            version=8,
            concurrency=3,
            part_size=16 << 20,
            windows=["22:00-06:00", "12:00-13:00"],
            bandwidth_bps=2_000_000,
            compression_level=8,
            paused=True,
            upload_now=True,
            reason="sizing: 3 parts of 16 MiB; operator: paused",
        ),
        CONTROLLER_STATE: ControllerState(controller_id="controller-1", seq=5, sent_at=AT, state=AgentStatus.ONLINE),
    }
    for seq, kind in enumerate(EventKind, start=20):
        found[f"{AgentChannel.EVENTS.value}.{kind.value}"] = _event(seq, kind)
    return {**found, **_queue_messages()}


def encoded() -> dict[str, bytes]:
    return {name: encode(message) for name, message in messages().items()}  # type: ignore[arg-type]


def topic_of(name: str, payload: bytes) -> str:
    """The topic a corpus message travels on: its channel is the name's first part."""
    channel = name.split(".", 1)[0]
    if channel == CONTROLLER_STATE:
        return CONTROLLER_STATE_TOPIC
    if channel in _QUEUE_TOPICS:
        return _QUEUE_TOPICS[channel].format(agent=AGENT)
    return agent_topic(json.loads(payload)["agent_id"], channel)


def decode_any(name: str, payload: bytes) -> Message | ControllerState | QueueRequest | QueueReply:
    """Decode a corpus message with this release's decoder for its kind (not for older releases: see
    ``tests.golden.decode``)."""
    from fleet_protocol.codec import decode, decode_controller_state, decode_queue_reply, decode_queue_request

    topic = topic_of(name, payload)
    if name == CONTROLLER_STATE:
        return decode_controller_state(topic, payload)
    if name == QUEUE_REQUEST:
        return decode_queue_request(payload)
    if name == QUEUE_REPLY:
        return decode_queue_reply(payload, AGENT)
    return decode(topic, payload)


def release_dir(release: str = __version__) -> Path:
    return GOLDEN_DIR / release


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


def releases() -> list[Path]:
    """Every committed release's corpus, oldest first."""
    return sorted((p for p in GOLDEN_DIR.iterdir() if p.is_dir() and p.name[:1].isdigit()), key=_version_key)


def corpus_files() -> list[Path]:
    """Every committed golden message of every release."""
    return [path for directory in releases() for path in sorted(directory.glob("*.json"))]


def write(directory: Path | None = None) -> list[Path]:
    directory = release_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, payload in encoded().items():
        path = directory / f"{name}.json"
        path.write_bytes(payload)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path)
