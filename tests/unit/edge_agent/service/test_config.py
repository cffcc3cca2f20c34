from pathlib import Path

import pytest

from edge_agent.service.config import ConfigError, load_config, parse_config

BASE = """
agent_id = "pi-garden-01"
site = "garden"
spool_dir = "/var/lib/edgefleet/spool"
state_dir = "/var/lib/edgefleet/state"
retention = "delete"
min_free_bytes = 536870912
settle_seconds = 30
telemetry_interval_s = 10
[mqtt]
url = "mqtt://pi-garden-01:secret@central.local:1883"
[s3]
endpoint = "http://central.local:9000"
access_key = "ak"
secret_key = "sk"
bucket = "recordings"
prefix = "field"
[defaults]
concurrency = 2
part_size = 8388608
compression_level = 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path):
    config = load_config(write(tmp_path, BASE), env={})
    assert config.agent_id == "pi-garden-01"
    assert config.spool_dir == Path("/var/lib/edgefleet/spool")
    assert config.mqtt.parsed.username == "pi-garden-01"
    assert config.mqtt.parsed.port == 1883
    assert config.s3.settings().bucket == "recordings"
    assert config.s3.prefix == "field"
    assert config.defaults.part_size == 8 * 1024 * 1024
    assert config.settle_seconds == 30.0


@pytest.mark.parametrize(
    ("var", "value", "get"),
    [
        ("EDGEFLEET_AGENT_ID", "pi-other", lambda c: c.agent_id),
        ("EDGEFLEET_MQTT_URL", "mqtt://u:p@10.0.0.1:1999", lambda c: c.mqtt.url),
        ("EDGEFLEET_S3_ENDPOINT", "https://s3.example:443", lambda c: c.s3.endpoint),
        ("EDGEFLEET_S3_ACCESS_KEY", "AK2", lambda c: c.s3.access_key),
        ("EDGEFLEET_S3_SECRET_KEY", "SK2", lambda c: c.s3.secret_key),
        ("EDGEFLEET_S3_BUCKET", "other-bucket", lambda c: c.s3.bucket),
    ],
)
def test_environment_overrides_the_file(tmp_path, var, value, get):
    config = load_config(write(tmp_path, BASE), env={var: value})
    assert get(config) == value


def test_environment_fills_a_missing_section(tmp_path):
    text = BASE.replace('[mqtt]\nurl = "mqtt://pi-garden-01:secret@central.local:1883"\n', "")
    with pytest.raises(ConfigError, match="mqtt"):
        load_config(write(tmp_path, text), env={})
    config = load_config(write(tmp_path, text), env={"EDGEFLEET_MQTT_URL": "mqtt://h:1"})
    assert config.mqtt.parsed.host == "h"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("settle_seconds = 30", "settle_secnds = 30", "settle_secnds: unknown key"),
        ('prefix = "field"', 'prefix = "field"\nregoin = "x"', "s3.regoin: unknown key"),
        ("compression_level = 5", "compresion_level = 5", "defaults.compresion_level: unknown key"),
        ('retention = "delete"', 'retention = "shred"', "retention"),
        ('retention = "delete"', 'retention = "move"', "done_dir"),
        ('agent_id = "pi-garden-01"', 'agent_id = "pi/+"', "agent_id"),
        ('url = "mqtt://', 'url = "http://', "mqtt"),
        ('endpoint = "http://central.local:9000"', 'endpoint = "central.local:9000"', "endpoint"),
        ("part_size = 8388608", "part_size = 1024", "part_size"),
        ("compression_level = 5", "compression_level = 9", "compression_level"),
        ("telemetry_interval_s = 10", "telemetry_interval_s = 0", "telemetry_interval_s"),
    ],
)
def test_bad_files_are_rejected_with_a_clear_message(tmp_path, old, new, message):
    assert old in BASE
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, BASE.replace(old, new, 1)), env={})


def test_move_with_done_dir_is_fine(tmp_path):
    text = BASE.replace('retention = "delete"', 'retention = "move"\ndone_dir = "/srv/done"')
    assert load_config(write(tmp_path, text), env={}).done_dir == Path("/srv/done")


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "agent_id = "), env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", env={})


def test_windows_in_defaults_are_checked():
    data = {
        "agent_id": "a",
        "spool_dir": "/s",
        "state_dir": "/t",
        "mqtt": {"url": "mqtt://h"},
        "s3": {"endpoint": "http://h:1", "access_key": "a", "secret_key": "b", "bucket": "c"},
        "defaults": {"windows": ["22:00-06:00"]},
    }
    assert parse_config(data, env={}).defaults.windows == ("22:00-06:00",)
    data["defaults"] = {"windows": ["22-6"]}
    with pytest.raises(ConfigError, match="windows"):
        parse_config(data, env={})


def test_agent_command_exits_2_with_the_message_on_a_bad_file(tmp_path, capsys):
    import argparse

    from edge_agent.service.main import configure, run

    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--config", str(write(tmp_path, BASE.replace("site =", "sight =")))])
    assert run(args) == 2
    assert "sight: unknown key" in capsys.readouterr().err
