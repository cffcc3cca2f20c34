"""controller.toml parsing: defaults, environment overrides, unknown keys and bad values are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config, parse_config
from fleet_base.mqtt_url import MqttUrl

MINIMAL = {"mqtt": {"url": "mqtt://controller:pw@127.0.0.1:1883"}}


def test_defaults_match_the_spec() -> None:
    config = parse_config(MINIMAL, env={})
    policy = config.policy_config()
    assert (config.controller_id, config.tick_seconds, config.offline_after_s, config.shared_group) == (
        "ctl-1",
        1.0,
        60.0,
        "",
    )
    assert config.database_url.startswith("sqlite:///")
    assert (policy.soft_limit_c, policy.hard_limit_c, policy.cool_margin_c, policy.cool_hold_s) == (70, 80, 5, 60)
    assert policy.site_uplink_bps == 12_500_000
    assert config.s3 is None


def test_full_file_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "controller.toml"
    path.write_text(
        """
controller_id = "ctl-2"
database_url = "sqlite:////tmp/x.db"
shared_group = "controllers"
[mqtt]
url = "mqtt://a:b@h:1"
telemetry_url = "mqtt://a-telemetry:c@h:1"
[metrics]
listen = "127.0.0.1:9464"
[agent_sites]
pi-01 = "north"
"pi-02" = "south"
[s3]
endpoint = "http://127.0.0.1:9000"
access_key = "ak"
secret_key = "sk"
bucket = "recordings"
stale_upload_hours = 12
[policy]
windows = ["22:00-06:00"]
max_concurrency = 4
[policy.sites.garden]
uplink_bps = 1000000
windows = ["01:00-02:00"]
"""
    )
    env = {
        "EDGEFLEET_DATABASE_URL": "postgresql+psycopg://u:p@db/fleet",
        "EDGEFLEET_MQTT_URL": "mqtt://c:d@broker:1884",
    }
    config = load_config(path, env=env)
    policy = config.policy_config()
    assert config.database_url == "postgresql+psycopg://u:p@db/fleet"
    assert config.mqtt.parsed.host == "broker"
    assert config.s3 is not None
    assert config.s3.stale_upload_hours == 12
    assert policy.uplink_for("garden") == 1_000_000
    assert policy.uplink_for("field") == 12_500_000
    assert policy.windows_for("garden") == ("01:00-02:00",)
    assert policy.windows_for("field") == ("22:00-06:00",)
    assert config.mqtt.telemetry is not None
    assert config.mqtt.telemetry.username == "a-telemetry"
    assert config.metrics.address == ("127.0.0.1", 9464)
    assert config.agent_sites == {"pi-01": "north", "pi-02": "south"}
    env["EDGEFLEET_MQTT_TELEMETRY_URL"] = "mqtt://t:e@broker:1884"
    assert load_config(path, env=env).mqtt.telemetry == MqttUrl("broker", 1884, "t", "e")


def test_the_new_sections_are_off_or_empty_by_default() -> None:
    config = parse_config(MINIMAL, env={})
    assert config.metrics.address is None
    assert config.agent_sites == {}
    assert config.mqtt.telemetry is None
    assert config.max_clock_skew_s == 5.0
    assert parse_config({**MINIMAL, "metrics": {"listen": "[::1]:0"}}, env={}).metrics.address == ("::1", 0)
    assert config.alerts.enabled
    assert config.alerts.webhooks == []
    assert (config.alerts.evaluate_interval_s, config.alerts.repeat_interval_s) == (15.0, 14_400.0)
    assert not config.recordings_events.enabled  # no webhook, no MQTT: the events thread does not run
    assert config.full_tick_seconds == 10.0  # changed-sites rounds between full ticks of a large fleet


def test_alert_webhooks_with_a_secret_header() -> None:
    hook = {"url": "https://hooks.example/edgefleet", "header": "Authorization", "secret": "Bearer x"}
    config = parse_config({**MINIMAL, "alerts": {"no_upload_h": 12, "webhooks": [hook]}}, env={})
    (webhook,) = config.alerts.webhooks
    assert (webhook.url, webhook.header, webhook.secret, webhook.timeout_s) == (*hook.values(), 10.0)
    assert config.alerts.no_upload_h == 12


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**MINIMAL, "tick_secs": 1}, "tick_secs: unknown key"),
        ({**MINIMAL, "policy": {"soft_limit": 60}}, "policy.soft_limit: unknown key"),
        ({**MINIMAL, "policy": {"windows": ["22:00-30:00"]}}, "invalid window"),
        ({**MINIMAL, "policy": {"soft_limit_c": 85}}, "must be below hard_limit_c"),
        ({**MINIMAL, "tick_seconds": 0}, "tick_seconds"),
        ({"mqtt": {"url": "http://x"}}, "mqtt.url"),
        ({}, "mqtt: Field required"),
        ({**MINIMAL, "s3": {"endpoint": "x", "access_key": "a", "secret_key": "b", "bucket": "c"}}, "s3"),
        ({**MINIMAL, "shared_group": "a/b"}, "shared_group"),
        ({**MINIMAL, "shared_group": "g"}, "mqtt.telemetry_url is required with shared_group"),
        (
            {"mqtt": {**MINIMAL["mqtt"], "telemetry_url": "mqtt://controller:x@127.0.0.1:1883"}, "shared_group": "g"},
            "another broker user",
        ),
        ({"mqtt": {**MINIMAL["mqtt"], "telemetry_url": "mqtt://t:p@127.0.0.1:1883"}}, "only used with shared_group"),
        ({"mqtt": {**MINIMAL["mqtt"], "telemetry_url": "http://t:p@h"}, "shared_group": "g"}, "mqtt.telemetry_url"),
        ({**MINIMAL, "agent_sites": {"pi/01": "north"}}, "agent_sites: .*not agent ids"),
        ({**MINIMAL, "agent_sites": {"pi-01": "x" * 129}}, "longer than 128"),
        ({**MINIMAL, "agent_sites": {"pi-01": 3}}, "agent_sites.pi-01"),
        ({**MINIMAL, "metrics": {"listen": "9464"}}, "metrics.listen"),
        ({**MINIMAL, "metrics": {"listen": "127.0.0.1:99999"}}, "metrics.listen"),
        ({**MINIMAL, "metrics": {"port": 9464}}, "metrics.port: unknown key"),
        ({**MINIMAL, "max_clock_skew_s": -1}, "max_clock_skew_s"),
        ({**MINIMAL, "alerts": {"offline_for": 60}}, "alerts.offline_for: unknown key"),
        ({**MINIMAL, "alerts": {"disk_low_fraction": 1.5}}, "alerts.disk_low_fraction"),
        ({**MINIMAL, "alerts": {"webhooks": [{"url": "ftp://x"}]}}, "alerts.webhooks.0.url"),
        ({**MINIMAL, "alerts": {"webhooks": [{"url": "http://x", "header": "Authorization"}]}}, "header and secret"),
        ({**MINIMAL, "alerts": {"webhooks": [{"url": "http://x", "header": "A: b", "secret": "s"}]}}, "header"),
        ({**MINIMAL, "recordings_events": {"webhooks": [{"url": "http://x"}]}}, "recordings_events.webhooks.0.secret"),
        ({**MINIMAL, "recordings_events": {"webhooks": [{"url": "http://x", "secret": "short"}]}}, "at least 16"),
        (
            {**MINIMAL, "recordings_events": {"webhooks": [{"url": "http://x", "secret": "s" * 16}] * 2}},
            "each recordings_events webhook url once",
        ),
        ({**MINIMAL, "full_tick_seconds": -1}, "full_tick_seconds"),
    ],
)
def test_bad_configuration_is_a_clear_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, env={})


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
