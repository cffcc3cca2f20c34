"""``edgefleet agent --config FILE`` as a real process: real engine, codec, Mosquitto and S3 (SeaweedFS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefleet.localservices import Mosquitto, SeaweedS3
from fleet_protocol.codec import decode
from fleet_protocol.messages import Event
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind
from tests.corpus import write_wav
from tests.integration.edge_agent.service.helpers import Observer
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, agent_id: str, broker: Mosquitto, s3: SeaweedS3) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
agent_id = "{agent_id}"
site = "test"
spool_dir = "{tmp_path / "spool"}"
state_dir = "{tmp_path / "state"}"
retention = "delete"
min_free_bytes = 0
settle_seconds = 0.5
scan_interval_s = 0.2
telemetry_interval_s = 1
[mqtt]
url = "{broker.url_for(agent_id)}"
[s3]
endpoint = "{s3.endpoint}"
access_key = "{s3.access_key}"
secret_key = "{s3.secret_key}"
bucket = "{s3.bucket}"
prefix = "it"
[defaults]
concurrency = 2
part_size = 5242880
compression_level = 5
"""
    )
    return config


@pytest.fixture
def agent_process(
    tmp_path: Path, mqtt_broker: Mosquitto, s3_server: SeaweedS3
) -> Iterator[tuple[subprocess.Popen[bytes], Observer]]:
    agent_id = "it-proc"
    if agent_id not in mqtt_broker.users:
        mqtt_broker.add_user(agent_id)
    (tmp_path / "spool").mkdir()
    config = write_config(tmp_path, agent_id, mqtt_broker, s3_server)
    observer = Observer(mqtt_broker.url_for("controller"), [f"edgefleet/v1/agents/{agent_id}/#"], "obs-proc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    log = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefleet.cli", "-v", "agent", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    yield proc, observer
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    observer.close()
    log.close()


def events(observer: Observer, agent_id: str) -> list[Event]:
    return observer.messages_of(agent_id, AgentChannel.EVENTS, Event)


def test_agent_uploads_a_spool_file_deletes_it_after_verification_and_dies_with_a_last_will(
    agent_process, tmp_path, s3_server
):
    proc, observer = agent_process
    state_topic = agent_topic("it-proc", AgentChannel.STATE)
    wait_for(lambda: observer.payloads(state_topic), timeout=60, what="agent online")
    recording = write_wav(tmp_path / "spool" / "dawn-chorus.wav", seconds=8, seed=5)
    original_size = recording.stat().st_size
    done = wait_for(
        lambda: [e for e in events(observer, "it-proc") if e.kind == EventKind.UPLOAD_COMPLETED],
        timeout=60,
        what="upload_completed event",
    )
    assert done[0].file == "dawn-chorus.wav"
    assert done[0].original_bytes == original_size
    assert done[0].stored_as == "flac"
    assert done[0].key.startswith("it/it-proc/")
    stat = s3_server.client().stat_object(s3_server.bucket, done[0].key)
    assert stat.size == done[0].stored_bytes < original_size
    wait_for(lambda: not recording.exists(), timeout=60, what="retention deleted the verified file")
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for(
        lambda: decode(state_topic, observer.payloads(state_topic)[-1]).state == AgentStatus.OFFLINE,  # type: ignore[attr-defined]
        timeout=60,
        what="Last Will after kill -9",
    )
