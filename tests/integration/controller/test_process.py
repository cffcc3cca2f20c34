"""The real ``edgefleet controller`` process: retained online state, clean shutdown, Last Will on kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgefleet.localservices import Mosquitto
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


class StateWatcher:
    def __init__(self, broker: Mosquitto) -> None:
        url = MqttUrl.parse(broker.login("state-watcher", role="controller"))
        self.states: list[dict[str, object]] = []
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="state-watcher", protocol=mqtt.MQTTv5)
        client.username_pw_set(url.username, url.password)
        client.on_message = self._message
        client.connect(url.host, url.port)
        client.loop_start()
        client.subscribe(CONTROLLER_STATE_TOPIC, qos=1)
        self.client = client

    def _message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.states.append(json.loads(message.payload))

    def last(self, controller_id: str) -> object:
        with self._lock:
            mine = [s for s in self.states if s["controller_id"] == controller_id]
        return mine[-1]["state"] if mine else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start(broker: Mosquitto, tmp_path: Path, controller_id: str) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{controller_id}.toml"
    config.write_text(
        f'controller_id = "{controller_id}"\ndatabase_url = "sqlite:///{tmp_path / "c.db"}"\n'
        "database_migrate = true\n"
        f'[mqtt]\nurl = "{broker.url_for("controller")}"\n'
    )
    log = (tmp_path / f"{controller_id}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "edgefleet.cli", "controller", "--config", str(config)], stdout=log, stderr=log
    )


@pytest.mark.parametrize("how", ["sigterm", "kill"])
def test_controller_state_online_then_offline(mqtt_broker_factory, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    broker = mqtt_broker_factory()
    watcher = StateWatcher(broker)
    controller_id = f"ctl-{how}"
    proc = start(broker, tmp_path, controller_id)
    try:
        wait_for(lambda: watcher.last(controller_id) == "online", 60, "controller online")
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait(20)
        wait_for(lambda: watcher.last(controller_id) == "offline", 60, f"offline after {how}")
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()
