from typing import Any

from edge_agent.engine import Limits
from edge_agent.service.assignment_store import AssignmentStore
from edge_agent.service.limits import limits_from_assignment
from fleet_protocol.messages import Assignment

MiB = 1024 * 1024


def assignment(agent_id: str = "pi-1", **kw: Any) -> Assignment:
    fields = {"version": 3, "concurrency": 2, "part_size": 8 * MiB} | kw
    return Assignment(agent_id=agent_id, seq=1, **fields)


def test_round_trip(tmp_path):
    store = AssignmentStore(tmp_path)
    assert store.load("pi-1") is None
    a = assignment(windows=["22:00-06:00"], bandwidth_bps=1000, reason="hot")
    store.save(a)
    assert AssignmentStore(tmp_path).load("pi-1") == a
    store.save(assignment(version=4))
    reloaded = store.load("pi-1")
    assert reloaded is not None
    assert reloaded.version == 4
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_or_foreign_files_fall_back_to_defaults(tmp_path):
    store = AssignmentStore(tmp_path)
    store.path.write_text("{ not json")
    assert store.load("pi-1") is None
    store.save(assignment(agent_id="pi-2"))
    assert store.load("pi-1") is None


def test_limits_from_assignment():
    limits = limits_from_assignment(assignment(concurrency=4, compression_level=-1, upload_now=True))
    assert limits == Limits(4, 8 * MiB, (), 0, -1, False, True)
    assert limits_from_assignment(assignment(concurrency=0)).stopped
