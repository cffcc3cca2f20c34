from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_base.mqtt_url import MqttUrl


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://u:p@host:1884", MqttUrl("host", 1884, "u", "p", False)),
        ("mqtts://host", MqttUrl("host", 8883, None, None, True)),
        ("mqtt://pi%2F1:p%40ss@h", MqttUrl("h", 1883, "pi/1", "p@ss", False)),
        ("mqtts://u:p@h:8884?cafile=/etc/ca.pem", MqttUrl("h", 8884, "u", "p", True, cafile="/etc/ca.pem")),
        (
            "mqtts://h?cafile=/c/ca.pem&certfile=/c/pi.pem&keyfile=/c/pi.key",
            MqttUrl("h", 8883, tls=True, cafile="/c/ca.pem", certfile="/c/pi.pem", keyfile="/c/pi.key"),
        ),
        ("mqtts://h?certfile=/c/both.pem", MqttUrl("h", 8883, tls=True, certfile="/c/both.pem")),
        ("mqtts://h?cafile=/a%20b/c%26d.pem", MqttUrl("h", 8883, tls=True, cafile="/a b/c&d.pem")),
        ("mqtt://[::1]:1883", MqttUrl("::1", 1883)),
    ],
)
def test_parse(url: str, expected: MqttUrl) -> None:
    assert MqttUrl.parse(url) == expected
    assert MqttUrl.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:1", "must start with"),
        ("mqtt://", "no host"),
        ("h:1883", "must start with"),
        ("mqtt://h?cafile=/ca.pem", "need an mqtts:// URL"),
        ("mqtts://h?keyfile=/k.pem", "keyfile needs certfile"),
        ("mqtts://h?cafile=", "must not be empty"),
        ("mqtts://h?insecure=1", "unknown option 'insecure'"),
        ("mqtts://h?cafile=/a&cafile=/b", "twice"),
        ("mqtts://h?cafile", "name=value pairs"),
    ],
)
def test_invalid(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        MqttUrl.parse(url)


def test_redacted_hides_the_password_and_keeps_the_tls_files() -> None:
    url = MqttUrl.parse("mqtts://u:secret@h:1?cafile=/etc/ca.pem&certfile=/etc/c.pem&keyfile=/etc/c.key")
    redacted = url.redacted()
    assert "secret" not in redacted
    assert MqttUrl.parse(redacted) == MqttUrl("h", 1, "u", "***", True, "/etc/ca.pem", "/etc/c.pem", "/etc/c.key")


paths = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=30)
names = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20)


@st.composite
def urls(draw: st.DrawFn) -> MqttUrl:
    tls = draw(st.booleans())
    certfile = draw(st.none() | paths) if tls else None
    return MqttUrl(
        host=draw(st.sampled_from(["h", "broker.lan", "10.0.0.1", "::1"])),
        port=draw(st.integers(1, 65535)),
        username=(user := draw(st.none() | names)),
        password=draw(st.none() | names) if user else None,
        tls=tls,
        cafile=draw(st.none() | paths) if tls else None,
        certfile=certfile,
        keyfile=draw(st.none() | paths) if certfile else None,
    )


@given(urls())
def test_every_url_round_trips_through_its_text(url: MqttUrl) -> None:
    assert MqttUrl.parse(str(url)) == url
