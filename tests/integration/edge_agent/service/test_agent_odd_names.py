"""Spool files with any name the file system allows (not UTF-8, 255 bytes, newlines, quotes, NFD, ...) go through
``edgefleet agent`` as a real process end to end: real engine and codec, real Mosquitto and SeaweedFS. The agent
restarts with them in its journal (it used to die with UnicodeEncodeError at every start)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote_to_bytes

import pytest

from edgefleet.cli import main
from edgefleet.localservices import Mosquitto, SeaweedS3
from fleet_audio.objectkey import key_name
from fleet_audio.source import META_NAME
from fleet_base.filenames import display_name, parse_display_name
from fleet_protocol.codec import decode
from fleet_protocol.messages import Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.integration.edge_agent.service.helpers import Observer
from tests.integration.edge_agent.service.test_agent_process import events, write_config
from tests.oddnames import ODD_NAMES, odd_str
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

AGENT = "it-odd"


def start_agent(
    tmp_path: Path, broker: Mosquitto, s3: SeaweedS3, *, paused: bool, log_name: str
) -> subprocess.Popen[bytes]:
    config = write_config(tmp_path, AGENT, broker, s3)
    if paused:  # [defaults] is the last table of the file
        config.write_text(config.read_text() + "paused = true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    with (tmp_path / log_name).open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "edgefleet.cli", "-v", "agent", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def backlog(observer: Observer) -> int | None:
    topic = agent_topic(AGENT, AgentChannel.TELEMETRY)
    payloads = observer.payloads(topic)
    if not payloads:
        return None
    message = decode(topic, payloads[-1])
    assert isinstance(message, Telemetry)
    return message.backlog_files


def test_odd_names_are_queued_survive_a_restart_and_are_stored_under_safe_keys(
    tmp_path: Path, mqtt_broker: Mosquitto, s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    if AGENT not in mqtt_broker.users:
        mqtt_broker.add_user(AGENT)
    spool = tmp_path / "spool"
    spool.mkdir()
    originals: dict[bytes, bytes] = {}
    days: dict[bytes, datetime] = {}  # the key's date is the file's mtime in UTC
    for seed, raw in enumerate(ODD_NAMES.values()):
        path = write_wav(spool / odd_str(raw), seconds=1, seed=seed)
        originals[raw] = path.read_bytes()
        days[raw] = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=UTC)
    observer = Observer(mqtt_broker.url_for("controller"), [f"edgefleet/v1/agents/{AGENT}/#"], "obs-odd")
    try:
        # 1. paused: every file is checked and queued in the journal, nothing uploads; then a clean stop
        proc = start_agent(tmp_path, mqtt_broker, s3_server, paused=True, log_name="agent-1.log")
        try:
            wait_for(lambda: backlog(observer) == len(ODD_NAMES), timeout=60, what="every odd name queued")
        finally:
            assert stop(proc) == 0, (tmp_path / "agent-1.log").read_text(errors="replace")
        with sqlite3.connect(tmp_path / "state" / "journal.sqlite3") as db:
            kinds = db.execute("SELECT typeof(path), count(*) FROM queue GROUP BY 1 ORDER BY 1").fetchall()
        assert kinds == [("blob", 1), ("text", len(ODD_NAMES) - 1)]  # only the name that is not UTF-8 is a BLOB

        # 2. restart with all of them in the journal: the agent starts and uploads every one
        proc = start_agent(tmp_path, mqtt_broker, s3_server, paused=False, log_name="agent-2.log")
        try:
            done = wait_for(
                lambda: (
                    (d := [e for e in events(observer, AGENT) if e.kind == EventKind.UPLOAD_COMPLETED])
                    and len(d) == len(ODD_NAMES)
                    and d
                ),
                timeout=180,
                what="every odd name uploaded",
            )
            wait_for(lambda: not os.listdir(spool), timeout=60, what="retention deleted every verified file")
            assert proc.poll() is None
        finally:
            assert stop(proc) == 0, (tmp_path / "agent-2.log").read_text(errors="replace")
    finally:
        observer.close()

    assert {e.file for e in done} == {display_name(raw) for raw in ODD_NAMES.values()}
    client = s3_server.client()
    for event in done:
        raw = parse_display_name(event.file)
        day = days[raw]
        # the agent's own cost model stores each file raw or FLAC (raw where its senders look CPU-bound, as on a
        # busy machine): the key is the same safe name either way, with the kind's extension
        kind: Literal["flac", "raw"] = "raw" if event.stored_as == "raw" else "flac"
        assert event.key == f"it/{AGENT}/{day:%Y}/{day:%m}/{day:%d}/{key_name(raw, kind)}"
        event.key.encode("utf-8")
        stat = client.stat_object(s3_server.bucket, event.key)
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        assert unquote_to_bytes(meta[f"x-amz-meta-{META_NAME}"]) == raw

    # 3. the original comes back bit for bit from its key (the name that is not UTF-8, and the longest)
    for env_name, value in s3_server.env().items():
        monkeypatch.setenv(env_name, value)
    for label in ("not UTF-8", "255 bytes"):
        raw = ODD_NAMES[label]
        key = next(e.key for e in done if parse_display_name(e.file) == raw)
        out = tmp_path / f"restored-{len(raw)}.wav"
        assert main(["restore", key, str(out)]) == 0
        assert out.read_bytes() == originals[raw]
