"""The central role's filters: Mosquitto 2.0 password hashes that are stable across runs, and column records."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_audio.source import object_key
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


prefixes = st.from_regex(r"/?([a-z0-9_.-]{1,8}/){0,2}[a-z0-9_.-]{0,8}/?", fullmatch=True)


@given(names, prefixes, st.integers(min_value=0, max_value=2**62))
def test_an_agents_policy_prefix_is_where_the_agent_writes(agent_id: str, prefix: str, mtime_ns: int) -> None:
    """The prefix the S3 policies allow is the one ``object_key`` builds every key of this agent under."""
    source = SimpleNamespace(fingerprint=SimpleNamespace(mtime_ns=mtime_ns), kind="flac")
    key = object_key(prefix, agent_id, Path("dawn.wav"), source)
    own = filters.edgefleet_agent_key_prefix({"id": agent_id, "s3_prefix": prefix})
    assert key.startswith(own)
    assert own.endswith(f"{agent_id}/")  # "pi-1/" never covers "pi-10/..."


@pytest.mark.parametrize("store", ["seaweedfs", "minio"])
def test_an_agents_policy_allows_its_own_prefix_and_nothing_that_lists_deletes_or_reaches_others(store: str) -> None:
    policy = filters.edgefleet_agent_s3_policy({"id": "pi-1", "s3_prefix": "field/"}, "recordings", store)
    objects, uploads = policy["Statement"]
    assert objects["Resource"] == ["arn:aws:s3:::recordings/field/pi-1/*"]
    assert uploads == {
        "Sid": "OwnPendingUploads",
        "Effect": "Allow",
        "Action": ["s3:ListBucketMultipartUploads"],
        "Resource": ["arn:aws:s3:::recordings"],
        "Condition": {"StringLike": {"s3:prefix": ["field/pi-1/*"]}},
    }
    assert not [a for a in objects["Action"] if "Delete" in a or ("List" in a and a != "s3:ListMultipartUploadParts")]
    multipart_steps = {"s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"}
    assert (multipart_steps <= set(objects["Action"])) == (store == "seaweedfs")  # MinIO rejects these names


def test_identities_are_the_controllers_janitor_and_one_per_agent() -> None:
    agents = [{"id": a, "s3_access_key": f"AK-{a}", "s3_secret_key": f"secret-{a}", "s3_prefix": ""} for a in "xy"]
    identities = filters.edgefleet_s3_identities(agents, "b", "seaweedfs", {"access_key": "C", "secret_key": "c"})
    assert [(i["name"], i["access_key"]) for i in identities] == [
        ("controller", "C"),
        ("agent-x", "AK-x"),
        ("agent-y", "AK-y"),
    ]
    janitor = {a for s in identities[0]["policy"]["Statement"] for a in s["Action"]}
    assert janitor == {"s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload"}
    config = filters.edgefleet_seaweedfs_config(identities, "ADMIN", "admin-secret")
    assert [i["name"] for i in config["identities"]] == ["admin", "controller", "agent-x", "agent-y"]
    assert config["identities"][1]["policyNames"] == ["policy-controller"]
    policies = {p["name"]: json.loads(p["content"]) for p in config["policies"]}
    assert policies["policy-agent-y"]["Statement"][0]["Resource"] == ["arn:aws:s3:::b/y/*"]


def test_the_central_probe_identity_is_there_when_it_has_a_key_and_reaches_only_its_prefix() -> None:
    controller = {"access_key": "C", "secret_key": "c"}
    without = filters.edgefleet_s3_identities([], "b", "minio", controller, {"access_key": "", "secret_key": ""})
    assert [i["name"] for i in without] == ["controller"]
    probe = {"access_key": "P", "secret_key": "p", "prefix": "_probe/"}
    identities = filters.edgefleet_s3_identities([], "b", "minio", controller, probe)
    assert [(i["name"], i["access_key"]) for i in identities] == [("controller", "C"), ("central-probe", "P")]
    (statement,) = identities[1]["policy"]["Statement"]
    assert set(statement["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    assert statement["Resource"] == ["arn:aws:s3:::b/_probe/*"]


@pytest.mark.parametrize("prefix", ["", "_probe", "*/", "/abs/", "a?/"])
def test_a_probe_prefix_that_would_widen_its_policy_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid S3 probe prefix"):
        filters.edgefleet_probe_s3_policy("b", prefix)


@pytest.mark.parametrize("agent_id", ["", "a/b", "a*"])
def test_an_id_that_would_widen_a_policy_is_refused(agent_id: str) -> None:
    with pytest.raises(ValueError, match="invalid agent id"):
        filters.edgefleet_agent_key_prefix({"id": agent_id, "s3_prefix": "field"})


def test_the_catalog_identity_is_there_when_it_has_a_key_and_only_reads() -> None:
    controller = {"access_key": "C", "secret_key": "c"}
    catalog = {"access_key": "R", "secret_key": "r"}
    identities = filters.edgefleet_s3_identities([], "b", "minio", controller, None, catalog)
    assert [(i["name"], i["access_key"]) for i in identities] == [("controller", "C"), ("catalog", "R")]
    (statement,) = identities[1]["policy"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (["s3:GetObject"], ["arn:aws:s3:::b/*"])
    without = filters.edgefleet_s3_identities([], "b", "minio", controller, None, {})
    assert [i["name"] for i in without] == ["controller"]


def test_the_transcoder_identity_is_there_when_enabled_and_may_read_write_and_delete_objects() -> None:
    controller = {"access_key": "C", "secret_key": "c"}
    off = filters.edgefleet_s3_identities(
        [], "b", "minio", controller, None, transcoder={"access_key": "", "secret_key": ""}
    )
    assert [i["name"] for i in off] == ["controller"]
    identities = filters.edgefleet_s3_identities(
        [], "b", "minio", controller, None, transcoder={"access_key": "T", "secret_key": "t"}
    )
    assert [(i["name"], i["access_key"]) for i in identities] == [("controller", "C"), ("transcoder", "T")]
    objects, listing = identities[1]["policy"]["Statement"]
    assert set(objects["Action"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }
    assert objects["Resource"] == ["arn:aws:s3:::b/*"]
    assert (listing["Action"], listing["Resource"]) == (["s3:ListBucketMultipartUploads"], ["arn:aws:s3:::b"])
