"""The lock files in requirements/ agree with pyproject.toml and pin every file by hash (offline check).

A dependency added to or changed in pyproject.toml without running ``scripts/lock.sh`` fails here, not in a
deployment: every requirement of each install must be pinned, with a version it allows, in that install's lock.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCKS = ("agent", "controller", "dashboard", "dev")
_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: ; (?P<marker>[^\\]+?))?\s*\\?$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]


def read_lock(path: Path) -> list[Pin]:
    pins: list[Pin] = []
    for line in path.read_text().splitlines():
        if match := _ENTRY.match(line):
            marker = Marker(match["marker"]) if match["marker"] else None
            pins.append(Pin(canonicalize_name(match["name"]), Version(match["version"]), marker, ()))
        elif line.strip().startswith("--hash=sha256:"):
            last = pins[-1]
            pins[-1] = Pin(
                last.name, last.version, last.marker, (*last.hashes, line.strip().split(":", 1)[1].rstrip(" \\"))
            )
    return pins


def requirements_of(extra: str) -> list[Requirement]:
    """The project's requirements for ``edgefleet[extra]``, self-referencing extras expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    todo, seen = [extra], set()
    while todo:
        current = todo.pop()
        seen.add(current)
        for line in project["optional-dependencies"][current]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "edgefleet":
                todo += [e for e in req.extras if e not in seen]
            else:
                found.append(req)
    return found


def _applies(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate()


@pytest.mark.parametrize("extra", LOCKS)
def test_every_requirement_is_pinned_in_its_lock_with_a_version_it_allows(extra: str) -> None:
    pins = [p for p in read_lock(REPO / "requirements" / f"{extra}.txt") if _applies(p.marker)]
    by_name = {p.name: p for p in pins}
    assert len(by_name) == len(pins), "two pins of one package apply to this interpreter"
    for req in requirements_of(extra):
        if not _applies(req.marker):
            continue
        pin = by_name.get(canonicalize_name(req.name))
        assert pin is not None, f"{req} is not in requirements/{extra}.txt: run scripts/lock.sh"
        assert req.specifier.contains(pin.version, prereleases=True), f"{req} vs {pin.version}: run scripts/lock.sh"


@pytest.mark.parametrize("lock", [*LOCKS, "build"])
def test_every_pin_carries_hashes(lock: str) -> None:
    pins = read_lock(REPO / "requirements" / f"{lock}.txt")
    assert pins
    for pin in pins:
        assert pin.hashes, f"{pin.name} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes)


def test_the_installers_are_locked_and_the_same_everywhere() -> None:
    build = {p.name: p.version for p in read_lock(REPO / "requirements" / "build.txt")}
    assert set(build) >= {"pip", "setuptools", "wheel"}
    for lock in LOCKS:
        for pin in read_lock(REPO / "requirements" / f"{lock}.txt"):
            if pin.name in build:
                assert pin.version == build[pin.name], f"{lock}.txt pins {pin.name} {pin.version}"
