"""The central role's controller.toml template, rendered by Ansible's own templating with the role's defaults and
a deployment's settings, read back by the controller's configuration: ``[alerts]`` (webhooks, thresholds),
``[recordings_events]`` and the tick settings are what the inventory says. And the broker ACL of a pipeline user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import load_config
from tests.unit.ansible.plugins import ROLES

templar_module = pytest.importorskip("ansible.template")
dataloader = pytest.importorskip("ansible.parsing.dataloader")

ROLE = ROLES / "central"
HOOK_SECRET = "Bearer alert-token-0123456789"
EVENT_SECRET = "pipeline-secret-0123456789"


def render(template: str, **settings: Any) -> str:
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables.update(
        ansible_managed="managed", central_agents=[], central_object_store="none", central_mqtt_host="broker.test",
        central_mqtt_url_query="", central_controller_mqtt_password="pw-0123456789abcdef",
        central_database_url="sqlite:////var/lib/edgefleet/controller.db", central_mqtt_users=[],
    )  # fmt: skip
    variables.update(settings)
    templar = templar_module.Templar(loader=dataloader.DataLoader(), variables=variables)
    text = (ROLE / "templates" / template).read_text()
    return str(templar.template(templar_module.trust_as_template(text)))


def test_alerts_and_recording_events_reach_the_controllers_configuration(tmp_path: Path) -> None:
    path = tmp_path / "controller.toml"
    path.write_text(
        render(
            "controller.toml.j2",
            central_controller_full_tick_seconds=20,
            central_controller_alerts={
                "external_url": "https://dashboard.example",
                "settings": {"offline_for_s": 600, "disk_low_fraction": 0.05},
                "webhooks": [
                    {"url": "https://hooks.example/alerts", "header": "Authorization", "secret": HOOK_SECRET},
                    {"url": "http://10.0.0.5:9093/api/v1/alerts", "timeout_s": 3},
                ],
            },
            central_controller_recordings_events={
                "mqtt": True,
                "settings": {"lookback_h": 6},
                "webhooks": [{"url": "https://pipeline.example/recordings", "secret": EVENT_SECRET}],
            },
        )
    )
    config = load_config(path, env={})
    assert config.full_tick_seconds == 20.0
    alerts = config.alerts
    assert (alerts.enabled, alerts.external_url) == (True, "https://dashboard.example")
    assert (alerts.offline_for_s, alerts.disk_low_fraction) == (600.0, 0.05)
    assert [(w.url, w.header, w.secret, w.timeout_s) for w in alerts.webhooks] == [
        ("https://hooks.example/alerts", "Authorization", HOOK_SECRET, 10.0),
        ("http://10.0.0.5:9093/api/v1/alerts", "", "", 3.0),
    ]
    events = config.recordings_events
    assert (events.mqtt, events.lookback_h, events.enabled) == (True, 6.0, True)
    assert [(w.url, w.secret) for w in events.webhooks] == [("https://pipeline.example/recordings", EVENT_SECRET)]


def test_the_defaults_render_alerts_on_without_receivers_and_no_recording_events(tmp_path: Path) -> None:
    path = tmp_path / "controller.toml"
    path.write_text(render("controller.toml.j2"))
    config = load_config(path, env={})
    assert (config.alerts.enabled, config.alerts.webhooks) == (True, [])
    assert config.recordings_events.enabled is False


def test_a_pipeline_user_reads_the_recording_events_only() -> None:
    users = [{"name": "birdnet", "password": "x" * 16, "role": "pipeline"}]
    lines = [line for line in render("mosquitto.acl.j2", central_mqtt_users=users).splitlines() if line.strip()]
    assert lines[lines.index("user birdnet") + 1 :] == ["topic read edgefleet/v1/recordings/stored"]
