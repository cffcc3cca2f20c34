"""Least privilege on the real S3 server (SeaweedFS): an agent's identity does exactly what its uploader needs,
under its own ``{prefix}/{agent_id}/``, and nothing to anyone else's objects: no read, list, overwrite or
delete. The controller's janitor identity only lists and aborts multipart uploads."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.deleteobjects import DeleteError, DeleteObject
from minio.error import S3Error

from edge_agent.engine.upload import StoredPart
from edge_agent.transfer.errors import TransferError
from edge_agent.transfer.s3 import S3Store
from edgefleet.localservices import SeaweedS3
from edgefleet.localservices.seaweed import PROBE_PREFIX, S3Identity, agent_policy, agent_prefix

pytestmark = pytest.mark.integration

PREFIX = "rec"
A, B = "pi-a", "pi-b"
OTHER_KEY = f"{PREFIX}/{B}/2026/01/02/other.flac"
OWN_KEY = f"{PREFIX}/{A}/2026/01/02/own.flac"
PAYLOAD = b"recording" * 100


class Server:
    def __init__(self, s3: SeaweedS3, agents: dict[str, S3Identity], janitor: S3Identity, probe: S3Identity) -> None:
        self.s3, self.agents, self.janitor, self.probe = s3, agents, janitor, probe
        self.admin = s3.client()

    def client(self, identity: S3Identity) -> Minio:
        return self.s3.client(identity.access_key, identity.secret_key)

    def store(self, identity: S3Identity) -> S3Store:
        return S3Store(self.s3.settings(identity), stall_timeout_s=30)

    def exists(self, key: str) -> bool:
        try:
            self.admin.stat_object(self.s3.bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return False
            raise
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s3 = SeaweedS3(directory=tmp_path_factory.mktemp("s3-identity"))
    agents = {agent: s3.add_agent_identity(agent, PREFIX) for agent in (A, B, "pi-a2")}
    janitor = s3.add_janitor_identity()
    probe = s3.add_probe_identity()
    with s3:
        yield Server(s3, agents, janitor, probe)


@pytest.fixture
def other_object(server: Server) -> str:
    """B's object, and a multipart upload of B's in progress; returns the upload id."""
    server.admin.put_object(server.s3.bucket, OTHER_KEY, io.BytesIO(PAYLOAD), len(PAYLOAD))
    upload_id: str = server.admin._create_multipart_upload(server.s3.bucket, OTHER_KEY + ".part", {})
    server.admin._upload_part(server.s3.bucket, OTHER_KEY + ".part", PAYLOAD * 6000, None, upload_id, 1)
    return upload_id


def _denied(call: Callable[[], Any]) -> str:
    """The S3 error code of ``call`` ("" if it succeeded); lazy results (listings, batch deletes) are consumed."""
    try:
        result = call()
        if isinstance(result, Iterator):
            for item in result:
                if isinstance(item, DeleteError):  # a batch delete answers 200 with an error per key
                    return str(item.code)
    except S3Error as exc:
        return str(exc.code)
    return ""


ATTACKS: dict[str, Callable[[Minio, str, str], Any]] = {
    "get": lambda c, bucket, _u: c.get_object(bucket, OTHER_KEY).read(),
    "ranged get": lambda c, bucket, _u: c.get_object(bucket, OTHER_KEY, offset=0, length=4).read(),
    "head": lambda c, bucket, _u: c.stat_object(bucket, OTHER_KEY),
    "list bucket": lambda c, bucket, _u: c.list_objects(bucket, recursive=True),
    "list other prefix": lambda c, bucket, _u: c.list_objects(bucket, prefix=f"{PREFIX}/{B}/", recursive=True),
    "list own prefix": lambda c, bucket, _u: c.list_objects(bucket, prefix=f"{PREFIX}/{A}/", recursive=True),
    "list v1": lambda c, bucket, _u: c.list_objects(bucket, recursive=True, use_api_v1=True),
    "overwrite": lambda c, bucket, _u: c.put_object(bucket, OTHER_KEY, io.BytesIO(b"evil"), 4),
    "new object in other prefix": lambda c, bucket, _u: c.put_object(bucket, f"{PREFIX}/{B}/x", io.BytesIO(b"e"), 1),
    "object at the top": lambda c, bucket, _u: c.put_object(bucket, "x.flac", io.BytesIO(b"e"), 1),
    "object in a sibling prefix": lambda c, bucket, _u: c.put_object(bucket, f"{PREFIX}/{A}2/x", io.BytesIO(b"e"), 1),
    "copy over": lambda c, bucket, _u: c.copy_object(bucket, OTHER_KEY, CopySource(bucket, OTHER_KEY)),
    "copy out": lambda c, bucket, _u: c.copy_object(bucket, f"{PREFIX}/{A}/stolen", CopySource(bucket, OTHER_KEY)),
    "multipart over": lambda c, bucket, _u: c._create_multipart_upload(bucket, OTHER_KEY, {}),
    "delete": lambda c, bucket, _u: c.remove_object(bucket, OTHER_KEY),
    "batch delete": lambda c, bucket, _u: c.remove_objects(bucket, [DeleteObject(OTHER_KEY)]),
    "list pending uploads": lambda c, bucket, _u: c._list_multipart_uploads(bucket),
    "list others pending uploads": lambda c, bucket, _u: c._list_multipart_uploads(bucket, prefix=f"{PREFIX}/{B}/"),
    "list parts": lambda c, bucket, u: c._list_parts(bucket, OTHER_KEY + ".part", u),
    "upload a part": lambda c, bucket, u: c._upload_part(bucket, OTHER_KEY + ".part", b"evil", None, u, 2),
    "complete": lambda c, bucket, u: c._complete_multipart_upload(bucket, OTHER_KEY + ".part", u, [Part(1, "x")]),
    "abort": lambda c, bucket, u: c._abort_multipart_upload(bucket, OTHER_KEY + ".part", u),
    "list buckets and create one": lambda c, _b, _u: c.make_bucket("stolen-bucket"),
    "delete the bucket": lambda c, bucket, _u: c.remove_bucket(bucket),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_agent_cannot_touch_another_agents_objects(server: Server, other_object: str, attack: str) -> None:
    client = server.client(server.agents[A])
    assert _denied(lambda: ATTACKS[attack](client, server.s3.bucket, other_object)) == "AccessDenied"
    # B's object and upload are unchanged
    assert server.admin.get_object(server.s3.bucket, OTHER_KEY).read() == PAYLOAD
    assert server.admin._list_parts(server.s3.bucket, OTHER_KEY + ".part", other_object).parts
    assert not server.exists(f"{PREFIX}/{A}/stolen")


def test_an_agent_lists_no_bucket(server: Server) -> None:
    assert server.client(server.agents[A]).list_buckets() == []


def test_the_uploader_works_under_its_own_prefix(server: Server) -> None:
    """Every call of the agent's S3 adapter, made with the agent's identity, as upload, resume, dedup and the
    stray-upload cleanup make them."""
    store = server.store(server.agents[A])
    part = bytearray(PAYLOAD * 6000)  # one part: the last part may be below the 5 MiB minimum
    md5 = hashlib.md5(part).hexdigest()
    upload_id = store.create(OWN_KEY, "audio/flac", {"edgefleet-original-size": "1"})
    stray = store.create(OWN_KEY, "audio/flac", {})
    assert {u.upload_id for u in store.pending_uploads(OWN_KEY)} == {upload_id, stray}
    store.abort(OWN_KEY, stray)
    etag = store.upload_part(OWN_KEY, upload_id, 1, part, md5)
    assert store.list_parts(OWN_KEY, upload_id) == [StoredPart(1, etag, len(part))]
    assert store.head(OWN_KEY) is None  # not there yet: a 404, not a denial
    store.complete(OWN_KEY, upload_id, [(1, etag)])
    head = store.head(OWN_KEY)
    assert head is not None
    assert head.size == len(part)
    assert head.metadata == {"edgefleet-original-size": "1"}
    assert store.read_range(OWN_KEY, 0, 9) == b"recording"
    assert store.pending_uploads(OWN_KEY) == []


def test_an_agent_cannot_see_another_agents_pending_uploads(server: Server, other_object: str) -> None:
    with pytest.raises(TransferError):
        server.store(server.agents[A]).pending_uploads(f"{PREFIX}/{B}/")


def test_an_agent_cannot_delete_even_its_own_objects(server: Server) -> None:
    """Deleting is the controller's and the operator's business: a stolen Pi cannot erase what it uploaded."""
    key = f"{PREFIX}/{A}/2026/01/03/keep.flac"
    client = server.client(server.agents[A])
    client.put_object(server.s3.bucket, key, io.BytesIO(PAYLOAD), len(PAYLOAD))
    assert _denied(lambda: client.remove_object(server.s3.bucket, key)) == "AccessDenied"
    assert _denied(lambda: client.remove_objects(server.s3.bucket, [DeleteObject(key)])) == "AccessDenied"
    assert server.exists(key)


def test_the_janitor_lists_and_aborts_uploads_but_reads_and_deletes_nothing(server: Server, other_object: str) -> None:
    janitor = server.client(server.janitor)
    bucket = server.s3.bucket
    pending = janitor._list_multipart_uploads(bucket).uploads
    assert (OTHER_KEY + ".part", other_object) in {(u.object_name, u.upload_id) for u in pending}
    for attack in ("get", "head", "overwrite", "delete", "batch delete", "list bucket"):
        assert _denied(partial(ATTACKS[attack], janitor, bucket, other_object)) == "AccessDenied"
    janitor._abort_multipart_upload(bucket, OTHER_KEY + ".part", other_object)
    assert other_object not in {u.upload_id for u in server.admin._list_multipart_uploads(bucket).uploads}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_central_probe_touches_nothing_outside_its_prefix(server: Server, other_object: str, attack: str) -> None:
    client = server.client(server.probe)
    assert _denied(lambda: ATTACKS[attack](client, server.s3.bucket, other_object)) == "AccessDenied"
    assert server.admin.get_object(server.s3.bucket, OTHER_KEY).read() == PAYLOAD


def test_the_central_probe_puts_gets_and_deletes_under_its_prefix(server: Server) -> None:
    client, bucket, key = server.client(server.probe), server.s3.bucket, f"{PROBE_PREFIX}ctl-1"
    client.put_object(bucket, key, io.BytesIO(PAYLOAD), len(PAYLOAD))
    assert client.get_object(bucket, key).read() == PAYLOAD
    client.remove_object(bucket, key)
    assert not server.exists(key)


def _stat_own_key(server: Server, access_key: str, secret_key: str) -> object:
    return server.s3.client(access_key, secret_key).stat_object(server.s3.bucket, OWN_KEY)


def test_unknown_and_wrong_keys_are_refused(server: Server) -> None:
    real = server.agents[A]
    for access, secret in (("nobody", "nothing"), (real.access_key, "wrong-secret")):
        assert _denied(partial(_stat_own_key, server, access, secret)) in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        )


@pytest.mark.parametrize(
    ("prefix", "agent_id", "expected"),
    [("rec", "pi-1", "rec/pi-1/"), ("/rec/x/", "pi-1", "rec/x/pi-1/"), ("", "pi-1", "pi-1/")],
)
def test_agent_prefix_is_the_uploaders_key_prefix(prefix: str, agent_id: str, expected: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fleet_audio.source import object_key

    class Fingerprint:
        mtime_ns = int(datetime(2026, 1, 2, tzinfo=UTC).timestamp() * 1e9)

    class Source:
        fingerprint = Fingerprint()
        kind = "flac"

    assert agent_prefix(prefix, agent_id) == expected
    assert object_key(prefix, agent_id, tmp_path / "r.wav", Source()).startswith(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["pi-*", "pi-?", "pi/1", "", "pi 1"])
def test_agent_ids_that_would_widen_a_policy_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="agent id"):
        agent_policy("recordings", "rec", bad)
