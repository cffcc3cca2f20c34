"""A real Mosquitto broker with a generated password file and ACL: one user per connection, tied to its client id.

Every listener sets ``use_username_as_clientid``: the broker replaces the client id a client sends with its
user name, so a client can never take over (and disconnect) another client's session, and every connection
needs its own user (a controller with a shared telemetry connection needs two). ``message_size_limit`` refuses
publishes above :data:`MESSAGE_SIZE_LIMIT` (well above the protocol's 64 KiB payload limit). With ``tls=True``
the broker listens with TLS only (a private CA in its directory, see ``tls.py``), optionally requiring client
certificates.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from edgefleet.localservices.process import (
    ServiceError,
    free_port,
    start_process,
    stop_process,
    tcp_answers,
    wait_until,
)
from fleet_protocol.messages import MAX_PAYLOAD_BYTES
from fleet_protocol.topics import (
    AGENT_PUBLISHES,
    CONTROLLER_STATE_TOPIC,
    NAMESPACE,
    QUEUE_REPLY_LEVEL,
    REPLIES_PREFIX,
    AgentChannel,
)

if TYPE_CHECKING:
    from edgefleet.localservices.tls import CertFiles, CertificateAuthority

Role = Literal["agent", "controller", "monitor", "dashboard", "pipeline"]

#: the broker refuses larger publishes; four times the protocol's payload limit leaves room for headers
MESSAGE_SIZE_LIMIT = 4 * MAX_PAYLOAD_BYTES
#: mosquitto_passwd's defaults for ``$7$`` (PBKDF2-SHA512) hashes
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12


@dataclass(frozen=True)
class MqttUser:
    name: str
    password: str
    role: Role = "agent"


def password_line(name: str, password: str, salt: bytes | None = None) -> str:
    """A ``password_file`` line as ``mosquitto_passwd`` writes it (no password on any command line)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{name}:$7${_PBKDF2_ITERATIONS}${encoded[0]}${encoded[1]}"


def acl_lines(users: list[MqttUser]) -> list[str]:
    """The ACL: an agent writes only its own birth/state/telemetry/events and reads only its own
    assignment and the controller state; a controller reads and writes the whole namespace; a monitor (the
    controller's central monitor) only reads the broker's own ``$SYS`` figures. Queue control: a dashboard writes
    queue requests to any agent and reads only the replies to itself; an agent reads only its own requests and
    writes replies that carry its own id, to any requester, and reads none (docs/security.md, "Queue control").
    A pipeline (an analysis pipeline) only reads the recording events."""
    lines: list[str] = []
    for user in users:
        lines.append(f"user {user.name}")
        if user.role == "controller":
            lines.append(f"topic readwrite {NAMESPACE}/#")
            lines.append("topic read $share/#")
        elif user.role == "monitor":
            lines.append("topic read $SYS/#")
        elif user.role == "dashboard":
            lines.append(f"topic write {NAMESPACE}/agents/+/queue/request")
            lines.append(f"topic read {REPLIES_PREFIX}/{user.name}/+/{QUEUE_REPLY_LEVEL}")
        elif user.role == "pipeline":
            lines.append(f"topic read {NAMESPACE}/recordings/stored")
        else:
            base = f"{NAMESPACE}/agents/{user.name}"
            lines += [f"topic write {base}/{channel.value}" for channel in sorted(AGENT_PUBLISHES)]
            lines.append(f"topic read {base}/{AgentChannel.ASSIGNMENT.value}")
            lines.append(f"topic read {CONTROLLER_STATE_TOPIC}")
            lines.append(f"topic read {base}/queue/request")
            lines.append(f"topic write {REPLIES_PREFIX}/+/{user.name}/{QUEUE_REPLY_LEVEL}")
        lines.append("")
    return lines


def _mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ServiceError("mosquitto is not installed (apt-get install mosquitto)")


class Mosquitto:
    """``with Mosquitto(users) as broker:`` – listens on 127.0.0.1 on a free port, MQTT v3.1.1 and v5."""

    def __init__(
        self,
        users: list[MqttUser] | None = None,
        directory: Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        persistence: bool = True,
        *,
        tls: bool = False,
        require_certificate: bool = False,
        message_size_limit: int = MESSAGE_SIZE_LIMIT,
        sys_interval: int = 10,
    ) -> None:
        """``persistence``: keep retained messages and sessions across a restart. Mosquitto 2.0.11 (Debian 12)
        can crash (general protection fault) on a config reload, which ``add_user`` on a running broker needs,
        when persistence is on (upstream issue 2167 and kin): a broker that never restarts should run without.

        ``tls``: the one listener speaks MQTT over TLS with a server certificate of a private CA made in
        ``directory/tls``; ``require_certificate``: clients must also present a certificate of that CA
        (``url_for`` issues one per user)."""
        if require_certificate and not tls:
            raise ValueError("require_certificate needs tls=True")
        self.persistence = persistence
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="edgefleet-mosquitto-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.tls = tls
        self.require_certificate = require_certificate
        self.message_size_limit = message_size_limit
        self.sys_interval = sys_interval  # seconds between the broker's $SYS updates
        self.users: dict[str, MqttUser] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "mosquitto.log"
        self._ca: CertificateAuthority | None = None
        self._client_certs: dict[str, CertFiles] = {}
        for user in users or []:
            self.users[user.name] = user

    # -- users -------------------------------------------------------------------------------------
    def add_user(self, name: str, password: str | None = None, role: Role = "agent") -> MqttUser:
        """Add a user (on a running broker: reloads the config and returns once the broker has read it)."""
        user = MqttUser(name, password or secrets.token_urlsafe(12), role)
        self.users[name] = user
        if self.running:
            self._write_auth()
            self.reload()
        return user

    def login(self, name: str, role: Role = "agent") -> str:
        """The URL of user ``name``, made first (random password) if it does not exist: one user per connection,
        since a second connection of a user takes over the first."""
        if name not in self.users:
            self.add_user(name, role=role)
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        """The ``mqtt://`` (``mqtts://`` with the CA, and a client certificate when required) URL of a user."""
        user = self.users[name]
        auth = f"{quote(user.name, safe='')}:{quote(user.password, safe='')}"
        if not self.tls:
            return f"mqtt://{auth}@{self.host}:{self.port}"
        query = f"cafile={quote(str(self.ca.cert_file), safe='/')}"
        if self.require_certificate:
            files = self.client_cert(name)
            query += f"&certfile={quote(str(files.cert), safe='/')}&keyfile={quote(str(files.key), safe='/')}"
        return f"mqtts://{auth}@{self.host}:{self.port}?{query}"

    # -- TLS ---------------------------------------------------------------------------------------
    @property
    def ca(self) -> CertificateAuthority:
        """The private CA of this broker (made on first use, kept in ``directory/tls``)."""
        if self._ca is None:
            from edgefleet.localservices.tls import CertificateAuthority

            self._ca = CertificateAuthority(self.directory / "tls", "edgefleet test broker CA")
        return self._ca

    def client_cert(self, name: str) -> CertFiles:
        """A client certificate (common name ``name``) signed by the broker's CA."""
        if name not in self._client_certs:
            self._client_certs[name] = self.ca.client(name)
        return self._client_certs[name]

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_auth(self) -> None:
        # Built aside and renamed into place: a reload still reading the files of the previous add_user must
        # never see half a password file (Mosquitto disconnects the clients it no longer finds there).
        passwd = self.directory / "passwd.new"
        passwd.touch(mode=0o600)
        passwd.chmod(0o600)
        passwd.write_text("".join(password_line(u.name, u.password) + "\n" for u in self.users.values()))
        acl = self.directory / "acl.new"
        acl.write_text("\n".join(acl_lines(list(self.users.values()))))
        passwd.replace(self.directory / "passwd")
        acl.replace(self.directory / "acl")

    def _listener_lines(self) -> list[str]:
        lines = [f"listener {self.port} {self.host}", "use_username_as_clientid true"]
        if self.tls:
            server = self.ca.server("mosquitto", (self.host, "localhost"))
            lines += [
                f"cafile {self.ca.cert_file}",
                f"certfile {server.cert}",
                f"keyfile {server.key}",
                "tls_version tlsv1.2",
                f"require_certificate {'true' if self.require_certificate else 'false'}",
            ]
        return lines

    def _write_config(self) -> Path:
        conf = self.directory / "mosquitto.conf"
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        conf.write_text(
            "\n".join(
                [
                    # Keep the invoking user (mosquitto drops root to 'mosquitto', which cannot read our files).
                    f"user {getpass.getuser()}",
                    "allow_anonymous false",
                    f"password_file {self.directory / 'passwd'}",
                    f"acl_file {self.directory / 'acl'}",
                    f"message_size_limit {self.message_size_limit}",
                    f"sys_interval {self.sys_interval}",
                    f"persistence {'true' if self.persistence else 'false'}",
                    f"persistence_location {data}/",
                    "autosave_interval 1",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    "max_queued_messages 100000",
                    *self._listener_lines(),
                    "",
                ]
            )
        )
        return conf

    def start(self) -> Mosquitto:
        if self.running:
            return self
        self._write_auth()
        conf = self._write_config()
        self._proc = start_process([_mosquitto_binary(), "-c", str(conf)], self.directory / "stdout.log")
        wait_until(
            lambda: tcp_answers(self.host, self.port), 15, f"mosquitto on port {self.port}", self._proc, self.log
        )
        return self

    def stop(self, hard: bool = False) -> None:
        stop_process(self._proc, hard=hard)
        self._proc = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def _reloads(self) -> int:
        try:
            return self.log.read_text(errors="replace").count("Reloading config.")
        except OSError:
            return 0

    def reload(self) -> None:
        """SIGHUP, then wait until the broker logged the reload. Mosquitto is single-threaded and reads the
        password file and ACL right after that line, before it serves the next packet: a client connecting
        after this returns meets the new users."""
        if self._proc is None:
            return
        before = self._reloads()
        self._proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self._reloads() > before, 15, "mosquitto config reload", self._proc, self.log)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
