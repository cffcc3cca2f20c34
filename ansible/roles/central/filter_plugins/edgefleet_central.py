"""Filters of the central role.

``mosquitto_passwd_hash``: a Mosquitto 2.0 password-file hash computed inside Ansible.

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


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"mosquitto_passwd_hash": mosquitto_passwd_hash, "edgefleet_records": edgefleet_records}
