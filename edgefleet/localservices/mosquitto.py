"""A real Mosquitto broker with a generated password file and ACL (DESIGN §2 broker rules)."""

from __future__ import annotations

import getpass
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from edgefleet.localservices.process import (
    ServiceError,
    free_port,
    start_process,
    stop_process,
    tcp_answers,
    wait_until,
)
from fleet_protocol.topics import AGENT_PUBLISHES, CONTROLLER_STATE_TOPIC, NAMESPACE, AgentChannel

Role = Literal["agent", "controller"]


@dataclass(frozen=True)
class MqttUser:
    name: str
    password: str
    role: Role = "agent"


def acl_lines(users: list[MqttUser]) -> list[str]:
    """The ACL: an agent writes only its own birth/state/telemetry/events and reads only its own
    assignment and the controller state; a controller reads and writes the whole namespace."""
    lines: list[str] = []
    for user in users:
        lines.append(f"user {user.name}")
        if user.role == "controller":
            lines.append(f"topic readwrite {NAMESPACE}/#")
            lines.append("topic read $share/#")
        else:
            base = f"{NAMESPACE}/agents/{user.name}"
            lines += [f"topic write {base}/{channel.value}" for channel in sorted(AGENT_PUBLISHES)]
            lines.append(f"topic read {base}/{AgentChannel.ASSIGNMENT.value}")
            lines.append(f"topic read {CONTROLLER_STATE_TOPIC}")
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
    ) -> None:
        """``persistence``: keep retained messages and sessions across a restart. Mosquitto 2.0.11 (Debian 12)
        can crash (general protection fault) on a config reload, which ``add_user`` on a running broker needs,
        when persistence is on (upstream issue 2167 and kin): a broker that never restarts should run without."""
        self.persistence = persistence
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="edgefleet-mosquitto-"))
        self.host = host
        self.port = port or free_port()
        self.users: dict[str, MqttUser] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "mosquitto.log"
        for user in users or []:
            self.users[user.name] = user

    # -- users -------------------------------------------------------------------------------------
    def add_user(self, name: str, password: str | None = None, role: Role = "agent") -> MqttUser:
        """Add a user (takes effect on the running broker after a config reload)."""
        user = MqttUser(name, password or secrets.token_urlsafe(12), role)
        self.users[name] = user
        if self.running:
            self._write_auth()
            self.reload()
        return user

    def url_for(self, name: str) -> str:
        user = self.users[name]
        return f"mqtt://{user.name}:{user.password}@{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_auth(self) -> None:
        # Built aside and renamed into place: a reload still reading the files of the previous add_user must
        # never see half a password file (Mosquitto disconnects the clients it no longer finds there).
        passwd = self.directory / "passwd.new"
        passwd.write_text("")
        passwd.chmod(0o600)
        for user in self.users.values():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), user.name, user.password],
                check=True,
                capture_output=True,
            )
        acl = self.directory / "acl.new"
        acl.write_text("\n".join(acl_lines(list(self.users.values()))))
        passwd.replace(self.directory / "passwd")
        acl.replace(self.directory / "acl")

    def _write_config(self) -> Path:
        conf = self.directory / "mosquitto.conf"
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        conf.write_text(
            "\n".join(
                [
                    # Keep the invoking user (mosquitto drops root to 'mosquitto', which cannot read our files).
                    f"user {getpass.getuser()}",
                    f"listener {self.port} {self.host}",
                    "allow_anonymous false",
                    f"password_file {self.directory / 'passwd'}",
                    f"acl_file {self.directory / 'acl'}",
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
        import time

        self.stop()
        time.sleep(downtime)
        self.start()

    def reload(self) -> None:
        import signal

        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
