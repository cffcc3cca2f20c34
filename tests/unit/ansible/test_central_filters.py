"""The central role's filters: Mosquitto 2.0 password hashes that are stable across runs, and column records."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.ansible.plugins import load_plugin

filters = load_plugin("central/filter_plugins/edgefleet_central.py")
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
passwords = st.text(min_size=1, max_size=64).filter(lambda p: "\x00" not in p)


def _verify(line_hash: str, password: str) -> bool:
    """Check a ``$7$`` hash the way Mosquitto 2.0 does (PBKDF2-HMAC-SHA512 over the decoded salt)."""
    _, kind, iterations, salt, digest = line_hash.split("$")
    assert kind == "7"
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return computed == base64.b64decode(digest)


@given(names, passwords)
def test_hash_verifies_and_is_stable(user: str, password: str) -> None:
    first = filters.mosquitto_passwd_hash(password, user)
    assert first == filters.mosquitto_passwd_hash(password, user)  # a second playbook run changes nothing
    assert _verify(first, password)
    assert not _verify(first, password + "x")


@given(names, names, passwords)
def test_salt_differs_between_users_with_the_same_password(a: str, b: str, password: str) -> None:
    if a == b:
        return
    salt_a = filters.mosquitto_passwd_hash(password, a).split("$")[3]
    salt_b = filters.mosquitto_passwd_hash(password, b).split("$")[3]
    assert salt_a != salt_b


@pytest.mark.parametrize(("password", "user"), [("", "pi-1"), ("secret", "a:b")])
def test_unusable_input_is_refused(password: str, user: str) -> None:
    with pytest.raises(ValueError, match=r"empty MQTT password|cannot contain"):
        filters.mosquitto_passwd_hash(password, user)


# Written by `mosquitto_passwd -b passwd alice secret` (Mosquitto 2.0.11).
REFERENCE = (
    "$7$101$3CytLsKRX9LKjzYY$hfdzc7bWeMPzaN8Y4Zz1oTMwrnRJ0kV9aO8LKzxNL0p3bjfSPkFgEujLw01pTMEMFt7K38QDV9sfmzMKnlASOg=="
)


def test_same_layout_as_mosquitto_passwd() -> None:
    assert _verify(REFERENCE, "secret")  # our reading of the format is Mosquitto's
    ours = filters.mosquitto_passwd_hash("secret", "alice")
    assert ours.split("$")[:3] == REFERENCE.split("$")[:3]
    assert [len(part) for part in ours.split("$")] == [len(part) for part in REFERENCE.split("$")]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({}, []),
        ({"name": [], "password": []}, []),
        ({"name": ["a", "b"], "role": ["x", "y"]}, [{"name": "a", "role": "x"}, {"name": "b", "role": "y"}]),
    ],
)
def test_records(columns: dict[str, list[object]], expected: list[dict[str, object]]) -> None:
    assert filters.edgefleet_records(columns) == expected


def test_records_refuse_ragged_columns() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        filters.edgefleet_records({"name": ["a"], "password": []})
