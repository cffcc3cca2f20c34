"""``[central]`` in controller.toml: defaults, its own broker user and S3 identity, the watched disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.central.monitor import disk_path
from controller.config import ConfigError, parse_config

MQTT = {"url": "mqtt://controller:pw@127.0.0.1:1883"}
S3 = {"endpoint": "http://127.0.0.1:9000", "access_key": "ctl", "secret_key": "s", "bucket": "b"}
PROBE = {"access_key": "probe", "secret_key": "p"}


def test_defaults() -> None:
    central = parse_config({"mqtt": MQTT}, env={}).central
    assert (central.enabled, central.interval_s, central.retention_days) == (True, 15.0, 30.0)
    assert (central.full_resolution_hours, central.downsample_s) == (24.0, 300.0)
    assert (central.mqtt, central.s3_probe) == (None, None)


def test_a_full_section() -> None:
    central = parse_config(
        {
            "mqtt": MQTT,
            "s3": S3,
            "central": {"interval_s": 5, "mqtt_url": "mqtt://mon:x@h:1", "s3_probe": {**PROBE, "prefix": "p/"}},
        },
        env={},
    ).central
    assert central.mqtt is not None
    assert central.mqtt.username == "mon"
    assert central.s3_probe is not None
    assert central.s3_probe.prefix == "p/"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"central": {"s3_probe": PROBE}}, "needs \\[s3\\]"),
        ({"central": {"mqtt_url": "mqtt://controller:other@h:1"}}, "broker user of its own"),
        ({"s3": S3, "central": {"s3_probe": {**PROBE, "prefix": "no-slash"}}}, "prefix"),
        ({"s3": S3, "central": {"s3_probe": {**PROBE, "prefix": "a*/"}}}, "prefix"),
        ({"central": {"interval_s": 0}}, "interval_s"),
        ({"central": {"mqtt_url": "http://x"}}, "mqtt_url"),
        ({"central": {"nonsense": 1}}, "nonsense"),
    ],
)
def test_bad_sections_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"mqtt": MQTT, **data}, env={})


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"database_url": "sqlite:////var/lib/edgefleet/controller.db"}, Path("/var/lib/edgefleet")),
        ({"database_url": "postgresql+psycopg://u:p@db/edgefleet"}, Path("/")),
        ({"database_url": "sqlite:///:memory:"}, Path("/")),
        ({"database_url": "sqlite:////x/c.db", "central": {"disk_path": "/srv/data"}}, Path("/srv/data")),
    ],
)
def test_the_watched_disk(settings: dict[str, Any], expected: Path) -> None:
    assert disk_path(parse_config({"mqtt": MQTT, **settings}, env={})) == expected
