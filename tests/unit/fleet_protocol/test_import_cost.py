"""What importing a module drags in: the Pi's upload path loads no pydantic (8 MB of RSS), no MQTT, no server.

Import contracts (``lint-imports``) see the import statements; this sees what Python really loads, package
``__init__`` files included, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("pydantic", "paho", "sqlmodel", "sqlalchemy", "fastapi", "uvicorn")


def loaded(module: str) -> set[str]:
    """The ``HEAVY`` packages in ``sys.modules`` after importing ``module`` alone."""
    code = f"import sys, json, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("edge_agent.cli_upload", set()),
        ("edge_agent.cli_restore", set()),
        ("edge_agent.cli_verify", set()),
        ("edge_agent.engine.attempt", set()),
        ("fleet_protocol.vocabulary", set()),
        ("fleet_protocol.topics", set()),
        ("fleet_protocol.assignment", set()),
        ("fleet_protocol.windows", set()),
        ("fleet_protocol.numbers", set()),
        ("fleet_base.s3settings", set()),
        ("fleet_base.paho", set()),  # paho itself only when a client is built
        ("edge_agent.service.main", {"pydantic", "paho"}),  # the agent service: never a server library
    ],
)
def test_a_module_loads_only_what_it_needs(module: str, allowed: set[str]) -> None:
    assert loaded(module) <= allowed


def test_the_probe_sees_what_is_loaded() -> None:
    assert loaded("fleet_protocol.codec") == {"pydantic"}
