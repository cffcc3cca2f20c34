"""The staged rollout of ``site.yml``: the canaries (group ``edge_canary``) first, then the other Pis in batches;
a failing canary stops the run before the first batch, and the batch hosts are left untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.ansible.deployment import AGENTS, CANARIES, Deployment, prepare, recap
from tests.integration.ansible.wheelhouse import Wheels

pytestmark = pytest.mark.integration

CANARY_PLAY = "PLAY [Edge agents, canaries first]"
BATCH_PLAY = "PLAY [Edge agents, the rest in batches]"


def _play_hosts(stdout: str, play: str) -> list[list[str]]:
    """For each time ``play`` started (once per batch): the hosts its first task ran on, in order."""
    batches = []
    for block in stdout.split(play)[1:]:
        first_task = block.split("TASK [", 2)[1] if "TASK [" in block else ""
        batches.append(re.findall(r"^\w+: \[([^\]]+)\]", first_task.split("TASK [")[0], re.MULTILINE))
    return batches


def test_the_canaries_go_first_then_the_others_in_batches(deployment: Deployment) -> None:
    first = deployment.runs[0].stdout
    assert first.index(CANARY_PLAY) < first.index(BATCH_PLAY)
    assert _play_hosts(first, CANARY_PLAY) == [list(CANARIES)]
    assert _play_hosts(first, BATCH_PLAY) == [[host] for host in AGENTS if host not in CANARIES]


def test_a_failing_canary_stops_the_rollout_before_the_first_batch(wheels: Wheels, tmp_path: Path) -> None:
    staged = prepare(tmp_path, wheels)
    for agent in AGENTS:
        staged.set_host_vars(agent, edge_agent_ca_cert_src="")  # no central node in this run: no private CA
    (canary,) = CANARIES
    # the new release installs, but the canary's health check fails (as a crashing agent would)
    staged.set_host_vars(canary, edge_agent_health_command=["sh", "-c", "echo the site probe failed; exit 3"])
    result = staged.run("--limit", "edge_agents")

    assert result.returncode != 0
    assert "the site probe failed" in result.stdout
    counts = recap(result)
    assert counts[canary]["failed"] == 1
    assert staged.path(canary, "/opt/edgefleet/agent/venv/bin/edgefleet").exists()  # installed, then found unhealthy
    assert BATCH_PLAY not in result.stdout
    for host in AGENTS:
        if host not in CANARIES:
            assert counts[host]["changed"] == 0  # only the pre-flight check ran on it
            assert not staged.root(host).exists()  # nothing written
