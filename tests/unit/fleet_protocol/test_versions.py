"""Version order and the fleet's version drift (pure)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_base import __version__
from fleet_protocol.versions import Drift, newest, version_drift, version_key

ORDERED = ["0.1.0", "0.2.0.dev1", "0.2.0rc1", "0.2.0", "0.2.0.1", "0.2.1", "0.10.0", "1.0.0"]


@pytest.mark.parametrize(("older", "newer"), list(itertools.pairwise(ORDERED)))
def test_order(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_two_strings_compare(a: str, b: str) -> None:
    """Whatever an agent reports as its version: the keys compare (no TypeError), and "newest" picks one."""
    assert (version_key(a) <= version_key(b)) or (version_key(b) < version_key(a))
    assert newest([a, b]) in {a, b} - {""} or not (a or b)


@pytest.mark.parametrize(
    ("versions", "central", "expected"),
    [
        ({}, "", Drift("")),
        ({}, "0.2.0", Drift("0.2.0")),
        ({"a": "0.2.0", "b": "0.2.0"}, "0.2.0", Drift("0.2.0")),
        ({"a": "0.2.0", "b": "0.1.0"}, "0.2.0", Drift("0.2.0", {"b": "0.1.0"})),
        # the central services are newer than every agent: all of them are behind
        ({"a": "0.1.0", "b": "0.1.0"}, "0.2.0", Drift("0.2.0", {"a": "0.1.0", "b": "0.1.0"})),
        # a canary runs a newer version than the central services: the rest of the fleet is behind it
        ({"canary": "0.3.0", "b": "0.2.0"}, "0.2.0", Drift("0.3.0", {"b": "0.2.0"})),
        ({"a": "0.10.0", "b": "0.9.0"}, "", Drift("0.10.0", {"b": "0.9.0"})),
        ({"a": "", "b": "0.2.0"}, "0.2.0", Drift("0.2.0")),  # never reported a version: not counted
    ],
)
def test_version_drift(versions: dict[str, str], central: str, expected: Drift) -> None:
    assert version_drift(versions, central) == expected


@given(st.dictionaries(st.text(max_size=8), st.sampled_from(["", *ORDERED]), max_size=20), st.sampled_from(ORDERED))
def test_no_agent_on_the_target_is_behind_and_none_is_ahead(versions: dict[str, str], central: str) -> None:
    drift = version_drift(versions, central)
    assert drift.target == newest([*versions.values(), central])
    assert all(version_key(v) < version_key(drift.target) for v in drift.behind.values())
    assert set(drift.behind) == {a for a, v in versions.items() if v and v != drift.target}


def test_the_changelog_has_a_section_for_the_current_version() -> None:
    changelog = (Path(__file__).parents[3] / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(__version__)}\] - ", changelog, re.M), f"CHANGELOG.md: no ## [{__version__}]"
