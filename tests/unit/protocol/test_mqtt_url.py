from __future__ import annotations

import pytest

from fleet_protocol.mqtt_url import MqttUrl


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://u:p@host:1884", MqttUrl("host", 1884, "u", "p", False)),
        ("mqtts://host", MqttUrl("host", 8883, None, None, True)),
        ("mqtt://pi%2F1:p%40ss@h", MqttUrl("h", 1883, "pi/1", "p@ss", False)),
    ],
)
def test_parse(url: str, expected: MqttUrl) -> None:
    assert MqttUrl.parse(url) == expected
    assert MqttUrl.parse(str(expected)) == expected


@pytest.mark.parametrize("url", ["http://h:1", "mqtt://", "h:1883"])
def test_invalid(url: str) -> None:
    with pytest.raises(ValueError, match="MQTT URL"):
        MqttUrl.parse(url)


def test_redacted_hides_the_password() -> None:
    assert "secret" not in MqttUrl.parse("mqtt://u:secret@h:1").redacted()
