"""Free ports, readiness waits and process lifetimes shared by the service runners."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service could not be started or did not become ready."""


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Held by one process of the machine at a time (an advisory ``flock`` on ``lock_file``, made if absent):
    for what parallel test workers must not do together, e.g. start PostgreSQL or fill a shared cache."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(*, with_grpc_offset: int | None = None, exclude: set[int] | None = None) -> int:
    """A free TCP port; with ``with_grpc_offset`` also ``port + offset`` is free (SeaweedFS gRPC).

    Every port is below the kernel's ephemeral range (32768-60999 on Debian): a port picked there can be taken
    by any outgoing connection between the check and the server's bind (seen in CI as a weed gRPC port)."""
    exclude = exclude if exclude is not None else set()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(10000, 20000) if with_grpc_offset else rng.randrange(20000, 32700)
        candidates = [port] + ([port + with_grpc_offset] if with_grpc_offset else [])
        if any(p in exclude for p in candidates):
            continue
        if all(port_is_free(p) for p in candidates):
            exclude.update(candidates)
            return port
    raise ServiceError("no free port found")


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode}{_tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise ServiceError(f"{what} not ready after {timeout:.0f} s{_tail(log)}")


def tcp_answers(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " ---\n" + "\n".join(text)


def start_process(
    argv: Sequence[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server with its output going to ``log`` (never a pipe nobody reads)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0, hard: bool = False) -> None:
    """Stop the process group: SIGTERM (or SIGKILL when ``hard``), then SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
