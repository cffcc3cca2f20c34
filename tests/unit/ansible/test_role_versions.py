"""The roles install the release this tree is (``fleet_base.__version__``, the one home of the version) when
no other version is asked for: their defaults must follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet_base import __version__

ROLES = Path(__file__).resolve().parents[3] / "ansible" / "roles"


@pytest.mark.parametrize(
    ("role", "variable"),
    [
        ("edge_agent", "edge_agent_version"),
        ("central", "central_version"),
        ("edgefleet_venv", "edgefleet_venv_version"),
    ],
)
def test_a_roles_default_version_is_this_release(role: str, variable: str) -> None:
    defaults = (ROLES / role / "defaults" / "main.yml").read_text()
    line = re.search(rf"^{variable}:(.*)$", defaults, re.M)
    assert line is not None, f"{variable} is not in {role}'s defaults"
    assert re.findall(r"\d+\.\d+\.\d+\S*?(?=['\"\s}]|$)", line.group(1)) == [__version__]
