from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.config import ConfigError, Role, load_config, parse_config

HASH = "$2b$04$" + "a" * 53

BASE = {"database_url": "sqlite:///x.db", "secret_key": "s" * 32}


def test_minimal_config_has_defaults() -> None:
    config = parse_config(BASE)
    assert (config.host, config.port, config.users) == ("0.0.0.0", 8080, [])


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.toml"
    path.write_text(
        'database_url = "sqlite:////tmp/c.db"\nhost = "127.0.0.1"\nport = 9000\nsecret_key = "0123456789abcdef"\n'
        f'[[users]]\nname = "admin"\npassword_hash = "{HASH}"\nrole = "operator"\n'
        f'[[users]]\nname = "watcher"\npassword_hash = "{HASH}"\n'
    )
    config = load_config(path)
    assert config.port == 9000
    assert [(u.name, u.role) for u in config.users] == [("admin", Role.OPERATOR), ("watcher", Role.VIEWER)]
    assert config.user("watcher") is not None
    assert config.user("nobody") is None


def test_environment_overrides_database_url() -> None:
    config = parse_config(BASE, {"EDGEFLEET_DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert config.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BASE | {"prot": 1}, "prot: unknown key (typo?)"),
        (BASE | {"users": [{"name": "a", "password_hash": HASH, "rol": "operator"}]}, "users.0.rol: unknown key"),
        (BASE | {"users": [{"name": "a", "password_hash": "plain"}]}, "bcrypt"),
        (BASE | {"users": [{"name": "a", "password_hash": HASH, "role": "root"}]}, "users.0.role"),
        (BASE | {"users": [{"name": "a", "password_hash": HASH}] * 2}, "duplicate user name(s): a"),
        (BASE | {"secret_key": "short"}, "secret_key"),
        (BASE | {"port": 70000}, "port"),
        ({"secret_key": "s" * 32}, "database_url"),
    ],
)
def test_bad_config_says_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="invalid dashboard configuration") as info:
        parse_config(data)
    assert message in str(info.value)


def test_tls_settings(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    plain = parse_config(BASE)
    assert (plain.serves_tls, plain.over_tls) == (False, False)
    served = parse_config(BASE | {"tls_cert_file": str(cert), "tls_key_file": str(key)})
    assert (served.serves_tls, served.over_tls, served.tls_cert_file) == (True, True, cert)
    proxied = parse_config(BASE | {"behind_tls_proxy": True})
    assert (proxied.serves_tls, proxied.over_tls) == (False, True)
    assert parse_config(BASE | {"secure_cookies": True}).over_tls
    with pytest.raises(ConfigError, match="set both or neither"):
        parse_config(BASE | {"tls_cert_file": str(cert)})
    with pytest.raises(ConfigError, match="tls_key_file"):
        parse_config(BASE | {"tls_cert_file": str(cert), "tls_key_file": str(tmp_path / "missing.pem")})


def test_login_settings_have_safe_defaults_and_bounds() -> None:
    config = parse_config(BASE)
    assert (config.login_max_failures, config.login_max_failures_per_address) == (5, 20)
    assert (config.login_backoff_base_s, config.login_backoff_max_s) == (1.0, 900.0)
    assert config.trusted_proxies == ["127.0.0.1"]
    with pytest.raises(ConfigError, match="must not exceed"):
        parse_config(BASE | {"login_backoff_base_s": 60, "login_backoff_max_s": 30})
    with pytest.raises(ConfigError, match="login_max_failures"):
        parse_config(BASE | {"login_max_failures": 0})


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


# -- thermal limits: the controller's policy's ------------------------------------------------------------------
CONTROLLER_TOML = """
controller_id = "ctl-1"
offline_after_s = 90
[mqtt]
url = "mqtts://controller:secret@broker:8883"
[policy]
soft_limit_c = 65.0
hard_limit_c = 75.5
"""


def controller_file(tmp_path: Path, text: str = CONTROLLER_TOML) -> Path:
    path = tmp_path / "controller.toml"
    path.write_text(text)
    return path


def test_thermal_limits_are_the_controller_policys(tmp_path: Path) -> None:
    config = parse_config(BASE | {"controller_config": str(controller_file(tmp_path))})
    assert (config.policy.soft_limit_c, config.policy.hard_limit_c) == (65.0, 75.5)
    assert config.policy.offline_after_s == 90


def test_without_any_the_limits_are_the_policys_defaults() -> None:
    from controller.policy import PolicyConfig

    config = parse_config(BASE)
    assert (config.policy.soft_limit_c, config.policy.hard_limit_c) == (
        PolicyConfig.soft_limit_c,
        PolicyConfig.hard_limit_c,
    )


def test_the_deprecated_own_limits_still_work_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="dashboard.config"):
        config = parse_config(BASE | {"soft_limit_c": 60.0})
    assert (config.policy.soft_limit_c, config.policy.hard_limit_c) == (60.0, 80.0)
    assert "soft_limit_c is deprecated: set controller_config" in caplog.text


@pytest.mark.parametrize(
    ("extra", "controller", "message"),
    [
        ({"hard_limit_c": 90.0}, CONTROLLER_TOML, "hard_limit_c cannot be set with controller_config"),
        ({}, CONTROLLER_TOML.replace("65.0", "85.0"), "must be below hard_limit_c"),
        ({}, CONTROLLER_TOML.replace("soft_limit_c", "soft_limit"), "policy.soft_limit: unknown key"),
        ({}, "[policy\n", "not valid TOML"),
    ],
)
def test_a_bad_controller_policy_is_a_dashboard_config_error(
    tmp_path: Path, extra: dict[str, object], controller: str, message: str
) -> None:
    with pytest.raises(ConfigError, match="invalid dashboard configuration") as info:
        parse_config(BASE | {"controller_config": str(controller_file(tmp_path, controller))} | extra)
    assert message in str(info.value)


def test_the_deprecated_limits_must_still_make_sense() -> None:
    with pytest.raises(ConfigError, match="must be below hard_limit_c"):
        parse_config(BASE | {"soft_limit_c": 85.0})


def test_the_controllers_other_settings_are_not_read(tmp_path: Path) -> None:
    """Only ``[policy]`` and ``offline_after_s``: the rest (its secrets, keys only a controller knows) is not parsed."""
    odd = CONTROLLER_TOML.replace('[mqtt]\nurl = "mqtts://controller:secret@broker:8883"\n', "tick_secnds = 1\n")
    config = parse_config(BASE | {"controller_config": str(controller_file(tmp_path, odd))})
    assert config.policy.soft_limit_c == 65.0


def test_mqtt_for_queue_control() -> None:
    assert parse_config(BASE).mqtt is None
    config = parse_config(BASE | {"mqtt": {"url": "mqtts://dash:pw@broker.lan:8883?cafile=/etc/ca.pem"}})
    assert config.mqtt is not None
    assert (config.mqtt.parsed.username, config.mqtt.parsed.port, config.mqtt.reply_timeout_s) == ("dash", 8883, 10.0)


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"url": "mqtt://broker:1883"}, "needs the dashboard's broker user"),
        ({"url": "http://dash:pw@broker"}, "mqtt://"),
        ({"url": "mqtt://a+b:pw@broker"}, "invalid agent id"),  # the user names the reply topics
        ({"url": "mqtt://dash:pw@broker", "reply_timeout_s": 0.5}, "reply_timeout_s"),
        ({"url": "mqtt://dash:pw@broker", "reply_timeout_s": 121}, "reply_timeout_s"),
        ({"url": "mqtt://dash:pw@broker", "timeout": 5}, "mqtt.timeout: unknown key"),
    ],
)
def test_bad_mqtt_section(mqtt: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        parse_config(BASE | {"mqtt": mqtt})
