"""A full local disk (the engine journal cannot be written) loses nothing: the agent logs, backs off, catches up.

The agent's state folder is a 1 MiB tmpfs in a private mount namespace of its own (``unshare --mount``, root
only), filled up from outside through ``/proc/PID/root``; nothing on the machine is changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.integration.edge_agent.service.helpers import Observer
from tests.integration.edge_agent.service.test_agent_process import write_config
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"),
]


def fill(path: Path) -> None:
    with path.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_full_state_disk_loses_nothing_and_uploads_once_there_is_room(tmp_path, mqtt_broker, s3_server):
    agent_id = "it-diskfull"
    if agent_id not in mqtt_broker.users:
        mqtt_broker.add_user(agent_id)
    (tmp_path / "spool").mkdir()
    (tmp_path / "state").mkdir()
    config = write_config(tmp_path, agent_id, mqtt_broker, s3_server)
    observer = Observer(mqtt_broker.url_for("controller"), [f"edgefleet/v1/agents/{agent_id}/#"], "obs-disk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    script = 'mount -t tmpfs -o size=1m tmpfs "$1" && shift && exec "$@"'
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(tmp_path / "state"),
                sys.executable,
                "-m",
                "edgefleet.cli",
                "-v",
                "agent",
                "--config",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def events() -> list[Event]:
        return observer.messages_of(agent_id, AgentChannel.EVENTS, Event)

    try:
        wait_for(lambda: observer.payloads(agent_topic(agent_id, AgentChannel.STATE)), timeout=60, what="online")
        state_inside = Path(f"/proc/{proc.pid}/root") / str(tmp_path / "state").lstrip("/")
        wait_for(lambda: (state_inside / "journal.sqlite3").exists(), what="journal on the tmpfs")
        assert not (tmp_path / "state" / "journal.sqlite3").exists()  # the tmpfs is private to the agent
        filler = state_inside / "filler"
        fill(filler)
        recording = write_wav(tmp_path / "spool" / "full-disk.wav", seconds=4, seed=9)
        wait_for(lambda: b"local disk full?" in log_path.read_bytes(), timeout=60, what="the disk-full log line")
        assert recording.exists()
        assert proc.poll() is None
        assert not [e for e in events() if e.kind == EventKind.UPLOAD_STARTED]
        filler.unlink()
        done = wait_for(
            lambda: [e for e in events() if e.kind == EventKind.UPLOAD_COMPLETED], timeout=90, what="upload"
        )
        assert done[0].file == "full-disk.wav"
        wait_for(lambda: not recording.exists(), what="retention after the verified upload")
        assert s3_server.client().stat_object(s3_server.bucket, done[0].key).size == done[0].stored_bytes
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        observer.close()
