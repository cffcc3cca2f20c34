"""Filters of the central role.

``mosquitto_passwd_hash``: a Mosquitto 2.0 password-file hash computed inside Ansible; ``edgefleet_records``:
columns to records; ``edgefleet_agent_key_prefix``: the only S3 key prefix an agent may use;
``edgefleet_agent_s3_policy`` / ``edgefleet_janitor_s3_policy`` / ``edgefleet_probe_s3_policy`` /
``edgefleet_catalog_s3_policy`` /
``edgefleet_s3_identities`` / ``edgefleet_seaweedfs_config``: the S3 identities and their IAM policies (the same
policies for SeaweedFS and MinIO); ``edgefleet_cert_request``: one certificate request of the ``edgefleet_pki`` module.

Mosquitto 2.0 stores ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>``. ``mosquitto_passwd``
draws a random salt, so running it again changes the file every time and a playbook never reports
``changed=0``. Here the 12-byte salt is derived from the user name and the password (HMAC-SHA256 keyed
with the password), so the same password always gives the same line and a new password a new salt.
The salt stays unknown to anyone who does not know the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

ITERATIONS = 101  # what mosquitto_passwd 2.0 writes
SALT_BYTES = 12


def mosquitto_passwd_hash(password: str, username: str, iterations: int = ITERATIONS) -> str:
    if not password:
        raise ValueError(f"empty MQTT password for {username!r}")
    if ":" in username:
        raise ValueError(f"MQTT user names cannot contain ':' ({username!r})")
    secret = password.encode("utf-8")
    salt = hmac.new(secret, b"edgefleet-mosquitto-salt\0" + username.encode("utf-8"), hashlib.sha256).digest()
    salt = salt[:SALT_BYTES]
    digest = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def edgefleet_records(columns: dict[str, list[object]]) -> list[dict[str, object]]:
    """``{'name': [a, b], 'password': [x, y]}`` -> ``[{'name': a, 'password': x}, {'name': b, 'password': y}]``."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"edgefleet_records: columns of different lengths {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    return [{key: values[i] for key, values in columns.items()} for i in range(count)]


def edgefleet_agent_key_prefix(agent: dict[str, object]) -> str:
    """Where agent ``{'id', 's3_prefix'}`` writes: ``<prefix>/<id>/`` (the agent strips slashes off its prefix)."""
    prefix = str(agent.get("s3_prefix") or "").strip("/")
    agent_id = str(agent["id"])
    if not agent_id or "/" in agent_id or "*" in agent_id:
        raise ValueError(f"invalid agent id for an S3 prefix: {agent_id!r}")
    return f"{prefix}/{agent_id}/" if prefix else f"{agent_id}/"


#: The S3 calls of an agent's uploader (edge_agent/transfer/s3.py), all on objects under its own prefix, in AWS IAM
#: names (MinIO accepts only these): PutObject covers single puts and every multipart step, GetObject the HEAD and
#: ranged reads of resume and verification. Never DeleteObject, never ListBucket.
AGENT_OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
#: SeaweedFS's policy engine checks the multipart steps under their own names as well.
SEAWEEDFS_MULTIPART_ACTIONS = ("s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload")
STORES = ("seaweedfs", "minio")


def _policy(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def edgefleet_agent_s3_policy(agent: dict[str, object], bucket: str, store: str) -> dict[str, object]:
    """Agent X's rights: its uploader's object calls under ``<bucket>/<prefix>/X/`` and listing the multipart
    uploads in progress only below that prefix (to find and abort its own stray uploads). Nothing else."""
    if store not in STORES:
        raise ValueError(f"unknown object store {store!r}")
    own = edgefleet_agent_key_prefix(agent)
    actions = list(AGENT_OBJECT_ACTIONS) + (list(SEAWEEDFS_MULTIPART_ACTIONS) if store == "seaweedfs" else [])
    return _policy(
        {"Sid": "OwnObjects", "Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{bucket}/{own}*"]},
        {
            "Sid": "OwnPendingUploads",
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{own}*"]}},
        },
    )


def edgefleet_janitor_s3_policy(bucket: str) -> dict[str, object]:
    """The controller's rights: list the multipart uploads in progress and abort stale ones. No object access."""
    return _policy(
        {
            "Sid": "ListUploads",
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
        },
        {
            "Sid": "AbortUploads",
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload"],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        },
    )


def edgefleet_probe_s3_policy(bucket: str, prefix: str) -> dict[str, object]:
    """The controller's S3 probe: put, get and delete objects under ``<bucket>/<prefix>`` and nowhere else."""
    if not prefix.endswith("/") or "*" in prefix or "?" in prefix or prefix.startswith("/"):
        raise ValueError(f"invalid S3 probe prefix {prefix!r}: 'name/', no wildcards")
    return _policy(
        {
            "Sid": "ProbeObjects",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
        }
    )


def edgefleet_catalog_s3_policy(bucket: str) -> dict[str, object]:
    """The controller's recordings catalog: read objects (HEAD and ranged GETs of their headers), nothing else."""
    return _policy(
        {
            "Sid": "ReadRecordings",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        }
    )


def edgefleet_transcoder_s3_policy(bucket: str) -> dict[str, object]:
    """The central transcoder's rights: read raw objects, write the new ones (multipart), delete the raw ones."""
    return _policy(
        {
            "Sid": "TranscodeObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        },
        {
            "Sid": "ListUploads",
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
        },
    )


def edgefleet_s3_identities(
    agents: list[dict[str, object]],
    bucket: str,
    store: str,
    controller: dict[str, object],
    probe: dict[str, object] | None = None,
    catalog: dict[str, object] | None = None,
    transcoder: dict[str, object] | None = None,
) -> list[dict[str, object]]:
    """Every S3 identity but the admin: ``controller`` (janitor), ``central-probe`` when ``probe`` has an access key,
    ``catalog`` (reads objects) when ``catalog`` has one, ``transcoder`` when ``transcoder`` has one, and
    ``agent-<id>`` per agent, each ``{name, access_key, secret_key, policy}``."""
    identities = [
        {
            "name": "controller",
            "access_key": controller["access_key"],
            "secret_key": controller["secret_key"],
            "policy": edgefleet_janitor_s3_policy(bucket),
        }
    ]
    if probe and probe.get("access_key"):
        identities.append(
            {
                "name": "central-probe",
                "access_key": probe["access_key"],
                "secret_key": probe["secret_key"],
                "policy": edgefleet_probe_s3_policy(bucket, str(probe.get("prefix") or "_probe/")),
            }
        )
    if catalog and catalog.get("access_key"):
        identities.append(
            {
                "name": "catalog",
                "access_key": catalog["access_key"],
                "secret_key": catalog["secret_key"],
                "policy": edgefleet_catalog_s3_policy(bucket),
            }
        )
    if transcoder and transcoder.get("access_key"):
        identities.append(
            {
                "name": "transcoder",
                "access_key": transcoder["access_key"],
                "secret_key": transcoder["secret_key"],
                "policy": edgefleet_transcoder_s3_policy(bucket),
            }
        )
    for agent in agents:
        identities.append(
            {
                "name": f"agent-{agent['id']}",
                "access_key": agent["s3_access_key"],
                "secret_key": agent["s3_secret_key"],
                "policy": edgefleet_agent_s3_policy(agent, bucket, store),
            }
        )
    return identities


def edgefleet_seaweedfs_config(
    identities: list[dict[str, object]], admin_key: str, admin_secret: str
) -> dict[str, object]:
    """SeaweedFS's ``-s3.config``: the admin identity (every right) and every other identity with its own policy."""
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": admin_key, "secretKey": admin_secret}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            *(
                {
                    "name": i["name"],
                    "credentials": [{"accessKey": i["access_key"], "secretKey": i["secret_key"]}],
                    "policyNames": [f"policy-{i['name']}"],
                }
                for i in identities
            ),
        ],
        "policies": [
            {"name": f"policy-{i['name']}", "content": json.dumps(i["policy"], sort_keys=True)} for i in identities
        ],
    }


def edgefleet_cert_request(name: str, names: list[str]) -> dict[str, object]:
    """One ``certs`` entry of the ``edgefleet_pki`` module: a server certificate ``name`` for host ``names``."""
    return {"name": name, "names": list(names)}


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "mosquitto_passwd_hash": mosquitto_passwd_hash,
            "edgefleet_records": edgefleet_records,
            "edgefleet_cert_request": edgefleet_cert_request,
            "edgefleet_agent_key_prefix": edgefleet_agent_key_prefix,
            "edgefleet_agent_s3_policy": edgefleet_agent_s3_policy,
            "edgefleet_janitor_s3_policy": edgefleet_janitor_s3_policy,
            "edgefleet_probe_s3_policy": edgefleet_probe_s3_policy,
            "edgefleet_catalog_s3_policy": edgefleet_catalog_s3_policy,
            "edgefleet_s3_identities": edgefleet_s3_identities,
            "edgefleet_seaweedfs_config": edgefleet_seaweedfs_config,
        }
