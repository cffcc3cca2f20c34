"""``edgefleet demo`` in a subprocess: ready, the dashboard answers and shows the agents and their uploads,
Ctrl-C (SIGINT) and SIGTERM stop everything with no process left, and a second run reuses the folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from edgefleet.demo import READY_LINE
from edgefleet.demo.layout import DASHBOARD_USER
from tests.corpus import write_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
AGENTS = 3


class DemoRun:
    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.output = root.parent / f"demo-{time.monotonic_ns()}.out"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edgefleet.cli", "demo", "--dir", str(root), "--agents", str(AGENTS), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> float:
        began = time.monotonic()
        while READY_LINE not in self.text():
            assert self.proc.poll() is None, f"demo exited with {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() - began < timeout, f"demo not ready after {timeout} s:\n{self.text()}"
            time.sleep(0.2)
        return time.monotonic() - began

    def state(self) -> dict[str, object]:
        return dict(json.loads((self.root / "demo.json").read_text()))

    def dashboard(self) -> httpx.Client:
        state = self.state()
        client = httpx.Client(base_url=f"http://127.0.0.1:{state['dashboard_port']}", timeout=10)
        client.post(
            "/api/login", json={"username": DASHBOARD_USER, "password": state["dashboard_password"]}
        ).raise_for_status()
        return client

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def leftovers(root: Path) -> list[str]:
    """Every process whose command line names the demo folder (broker, S3, controller, dashboard, agents)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, KeyError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout} s (last: {last})")


@pytest.fixture
def demo_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "demo-data"
    yield root
    for line in leftovers(root):  # never leave a process behind, even when an assertion failed
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


def secrets(state: dict[str, Any]) -> list[str]:
    """Every password and secret key of the demo (demo.json)."""
    found = [state[k] for k in ("mqtt_controller_password", "dashboard_password", "dashboard_secret_key")]
    found += [state["s3_secret_key"], *state["agent_passwords"].values()]
    found += [secret_key for _access, secret_key in state["s3_keys"].values()]
    assert len(found) >= 3 + 1 + 2 * AGENTS + 1
    return found


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def round_trip_from_the_printed_settings(run: DemoRun, work: Path) -> None:
    """What the README tells a new user: paste the demo's export line, then upload, verify and restore."""
    shown = cli("demo", "env", "--dir", str(run.root))
    assert shown.returncode == 0, shown.stderr
    line = shown.stdout.strip()
    assert line in run.text()  # the demo printed the same line at start
    env_dump = subprocess.run(["bash", "-c", f"{line}; env -0"], capture_output=True, check=True).stdout
    env = dict(item.split("=", 1) for item in env_dump.decode().split("\0") if "=" in item)
    wav = work / "dawn.wav"
    write_wav(wav, 2.0)
    state_dir = ["--state-dir", str(work / "journal")]
    uploaded = cli("upload", str(wav), "--agent-id", "readme-user", *state_dir, env=env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    key = uploaded.stdout.split(" -> ")[1].split()[0]
    assert cli("verify", key, str(wav), env=env).returncode == 0
    assert cli("restore", key, str(work / "back.wav"), env=env).returncode == 0
    assert (work / "back.wav").read_bytes() == wav.read_bytes()


def fleet(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/api/fleet")
    answer.raise_for_status()
    return dict(answer.json())


def central_measured(client: httpx.Client) -> bool:
    """The demo's controller watches its broker ($SYS, its own user) and probes its S3 (its own identity)."""
    points = client.get("/api/central").json()["points"]
    return any(p["broker_clients"] and p["s3_probes"] and not p["s3_probe_errors"] for p in points)


def test_demo_runs_the_whole_system_and_stops_cleanly(demo_root: Path) -> None:
    first = DemoRun(demo_root, "--fresh", "--record-every", "5")
    try:
        ready_s = first.wait_ready()
        assert ready_s < 60
        assert "FAILED" not in first.text(), first.text()  # every part started
        state = first.state()
        assert f"login {DASHBOARD_USER} / {state['dashboard_password']}" in first.text()
        client = first.dashboard()
        wait_until(lambda: sum(r["online"] for r in fleet(client)["rows"]) == AGENTS, 60, "all agents online")
        uploaded = wait_until(lambda: fleet(client)["totals"]["uploaded_today_files"], 90, "a first upload")
        wait_until(lambda: central_measured(client), 90, "the central monitor's broker and S3 probe figures")
        assert leftovers(demo_root)  # the services really run as processes under the folder
        exposed = [line for line in leftovers(demo_root) if any(s in line for s in secrets(state))]
        assert exposed == [], "a secret on a command line (ps shows it to every local user)"
        round_trip_from_the_printed_settings(first, demo_root.parent)
        assert first.stop(signal.SIGINT) == 0, first.text()
    finally:
        first.kill()
    assert leftovers(demo_root) == []
    assert "stopped" in first.text()

    # a second run reuses the folder: same login, the uploads of the first run are still there; SIGTERM stops it
    second = DemoRun(demo_root)
    try:
        second.wait_ready()
        assert second.state()["dashboard_password"] == state["dashboard_password"]
        client = second.dashboard()
        assert fleet(client)["totals"]["uploaded_today_files"] >= uploaded
        assert second.stop(signal.SIGTERM) == 0, second.text()
    finally:
        second.kill()
    assert leftovers(demo_root) == []
