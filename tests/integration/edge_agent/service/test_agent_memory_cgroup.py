"""``edgefleet agent`` as a real process in a 256 MiB memory cgroup (the Ansible role's ``MemoryMax=256M``), at the
largest assignment the policy gives a Pi 4 4 GB that reports that limit: it uploads real recordings to SeaweedFS
and is never OOM-killed.

cgroup v1 (this machine's memory controller): a child group of the test's own memory group, with
``memory.limit_in_bytes`` (and, where there is one, the swap limit) at 256 MiB; the agent enters it before it
execs (``sh -c 'echo $$ > cgroup.procs; exec ...'``), so everything it ever allocates is charged to it. The group
is removed at the end. ``memory.failcnt`` counts every time the group reached its limit, which reading 200 MB of
WAVs through the page cache does (the kernel then reclaims cache: no harm); a kill is ``oom_kill`` in
``memory.oom_control`` and a dead process.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.policy import AgentView, FleetView, PolicyConfig, TelemetryView, assign
from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.sim.profiles import PROFILES
from fleet_plan.memory import HEADROOM
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment, Birth, ControllerState
from fleet_protocol.topics import CONTROLLER_STATE_TOPIC, AgentChannel, agent_topic
from fleet_protocol.vocabulary import AgentStatus, EventKind
from tests.corpus import write_wav
from tests.faultproxy import FaultProxy
from tests.integration.edge_agent.service.helpers import Observer
from tests.integration.edge_agent.service.test_agent_process import events, write_config
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
AGENT = "it-cgroup"
LIMIT = 256 * 2**20
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
FILES = 6
PER_CONNECTION_BPS = 1_500_000


def own_memory_group() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return MEMORY_ROOT / path.lstrip("/")
    return None


@pytest.fixture
def memory_group() -> Iterator[Path]:
    parent = own_memory_group()
    if parent is None or not (parent / "memory.limit_in_bytes").exists() or not os.access(parent, os.W_OK):
        pytest.skip("needs a writable cgroup v1 memory controller (root)")
    group = parent / f"edgefleet-it-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(LIMIT))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(LIMIT))
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():  # only ours can be in it
            os.kill(int(pid), signal.SIGKILL)
        wait_for(lambda: not (group / "cgroup.procs").read_text().strip(), timeout=60, what="the group empty")
        group.rmdir()


def largest_assignment(baseline: int) -> Assignment:
    """What the policy gives a cool Pi 4 4 GB in a 256 MiB cgroup: the largest concurrency × part size over
    links from thin to very fast (a fast link asks for the biggest parts)."""
    pi4 = PROFILES["pi4-4g"]
    now = datetime.now(UTC)
    decisions = []
    for rate in (1e5, 1e6, 8e6, 32e6, 1e8, 1e9):
        reading = TelemetryView(at=now, temperature_c=45.0, backlog_bytes=10**10, throughput_bps=rate)
        agent = AgentView(
            AGENT,
            cores=pi4.cores,
            ram_bytes=pi4.ram_bytes,
            telemetry=reading,
            memory_limit_bytes=LIMIT,
            baseline_rss_bytes=baseline,
        )
        decisions.append(assign(FleetView(agents=(agent,)), PolicyConfig(site_uplink_bps=0), now)[AGENT])
    best = max(decisions, key=lambda d: d.settings.concurrency * d.settings.part_size)
    return Assignment.of(best.settings, agent_id=AGENT, seq=1, version=1, reason=best.reason)


def oom_kills(group: Path) -> int:
    fields = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    return int(fields.get("oom_kill", 0)) + int(fields["under_oom"])


@pytest.fixture
def slow_s3(s3_server: SeaweedS3) -> Iterator[FaultProxy]:
    """S3 behind a link slower than the encoder, so that every part slot holds a full part."""
    with FaultProxy(s3_server.host, s3_server.port) as proxy:
        proxy.set_rate(PER_CONNECTION_BPS)
        yield proxy


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_the_agent_fits_a_256_mib_cgroup_at_the_largest_assignment(
    memory_group: Path, tmp_path: Path, mqtt_broker: Mosquitto, s3_server: SeaweedS3, slow_s3: FaultProxy
) -> None:
    if AGENT not in mqtt_broker.users:
        mqtt_broker.add_user(AGENT)
    (tmp_path / "spool").mkdir()
    config = write_config(tmp_path, AGENT, mqtt_broker, s3_server)
    config.write_text(config.read_text().replace(s3_server.endpoint, f"http://127.0.0.1:{slow_s3.port}"))
    controller = Observer(mqtt_broker.url_for("controller"), [f"edgefleet/v1/agents/{AGENT}/#"], "obs-cgroup")
    controller.publish(CONTROLLER_STATE_TOPIC, encode(ControllerState(controller_id="c", state=AgentStatus.ONLINE)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    agent_cmd = shlex.join([sys.executable, "-m", "edgefleet.cli", "-v", "agent", "--config", str(config)])
    enter = f"echo $$ > {shlex.quote(str(memory_group / 'cgroup.procs'))} && exec {agent_cmd}"
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen(["sh", "-c", enter], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        birth_topic = agent_topic(AGENT, AgentChannel.BIRTH)
        [raw] = wait_for(lambda: controller.payloads(birth_topic), timeout=60, what="birth")
        birth = decode(birth_topic, raw)
        assert isinstance(birth, Birth)
        assert birth.memory_limit_bytes == LIMIT  # the agent read its own cgroup's limit
        assert 0 < birth.baseline_rss_bytes < LIMIT * HEADROOM
        plan = largest_assignment(birth.baseline_rss_bytes)
        assert plan.concurrency >= 1, plan.reason
        assert plan.concurrency * plan.part_size + birth.baseline_rss_bytes <= LIMIT * HEADROOM
        controller.publish(agent_topic(AGENT, AgentChannel.ASSIGNMENT), encode(plan))
        for index in range(FILES):  # ~38 MB each: every part slot is busy
            write_wav(tmp_path / "spool" / f"night-{index}.wav", seconds=200, channels=2, seed=index)

        def completed() -> set[str]:
            return {e.file for e in events(controller, AGENT) if e.kind == EventKind.UPLOAD_COMPLETED}

        done = wait_for(
            lambda: len(completed()) == FILES and completed(),
            timeout=600,
            what=lambda: f"all {FILES} uploads; agent alive: {proc.poll() is None}, done: {sorted(completed())}",
        )
        assert done == {f"night-{index}.wav" for index in range(FILES)}
        for event in [e for e in events(controller, AGENT) if e.kind == EventKind.UPLOAD_COMPLETED]:
            assert s3_server.client().stat_object(s3_server.bucket, event.key).size == event.stored_bytes
        peak = int((memory_group / "memory.max_usage_in_bytes").read_text())
        rss = peak_rss(proc.pid)
        failcnt = (memory_group / "memory.failcnt").read_text().strip()
        print(
            f"assignment {plan.concurrency} × {plan.part_size >> 20} MiB,"
            f" baseline {birth.baseline_rss_bytes >> 20} MiB,"
            f" agent peak RSS {rss >> 20} MiB, group peak {peak >> 20} MiB, failcnt {failcnt}"
        )
        assert rss <= LIMIT * HEADROOM  # what the plan promised, measured
        assert proc.poll() is None, "the agent died"
        assert oom_kills(memory_group) == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        controller.close()
