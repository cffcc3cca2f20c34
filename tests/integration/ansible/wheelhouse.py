"""Installs for the Ansible tests: the edgefleet wheel built from this tree and the real wheels the locks pin.

The roles install a hash lock (``requirements/<role>.txt``, ``--require-hashes``) and then the edgefleet wheel
(``--no-deps``). The tests point pip at a local wheelhouse (``--no-index --find-links``) made by ``scripts/wheelhouse.sh
native`` from each lock, kept in a cache folder named after the lock's and the script's content (so a changed lock
downloads afresh and an unchanged one never touches the network again), plus the edgefleet wheel built from a
copy of this checkout. The wheels are the very files the locks hash (pyflac, an sdist only, is built by the
script and its wheel's hash added to the wheelhouse's own lock): the role's hash check runs for real.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LOCKS = REPO / "requirements"
# the packages the wheel holds, as pyproject.toml lists them (a new package is never left out of the copy)
_FIND = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
_PACKAGES = tuple(pattern.rstrip("*") for pattern in _FIND["include"])
_SOURCE_ITEMS = ("pyproject.toml", *_PACKAGES)
INDEX_HOST = "pypi.org"
WHEELHOUSE_SCRIPT = REPO / "scripts" / "wheelhouse.sh"


@functools.cache
def index_reachable(host: str = INDEX_HOST, timeout: float = 10.0) -> bool:
    """Whether the package index answers on HTTPS (tests that need it are skipped otherwise)."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgefleet-tests" / "wheelhouse"


def pip(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """This venv's pip, quiet, failing with its output."""
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def offline_wheelhouse(lock: str, arch: str = "native") -> Path:
    """``scripts/wheelhouse.sh ARCH requirements/LOCK.txt``, cached under the sha256 of the lock and the script:
    the first run needs the index, every later one reads the cache."""
    inputs = (LOCKS / f"{lock}.txt").read_bytes() + WHEELHOUSE_SCRIPT.read_bytes()
    digest = hashlib.sha256(inputs).hexdigest()[:16]
    folder = cache_root() / f"{lock}-{arch}-{sys.implementation.cache_tag}-{digest}"
    if (folder / ".complete").exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    result = subprocess.run(
        ["bash", str(WHEELHOUSE_SCRIPT), arch, str(LOCKS / f"{lock}.txt"), str(partial)],
        env={**os.environ, "PIP": str(Path(sys.executable).parent / "pip")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wheelhouse.sh {arch} {lock} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    partial.with_name(partial.name + ".tar").rename(folder.with_name(folder.name + ".tar"))
    (folder / ".complete").touch()
    return folder


def build_edgefleet_wheel(out_dir: Path) -> Path:
    """``pip wheel`` of a clean copy of the checkout (building in place would leave ``build/`` behind)."""
    src = out_dir / "src"
    for item in _SOURCE_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / item)
    dist = out_dir / "dist"
    pip("wheel", "-q", "--no-deps", "--no-index", "--no-build-isolation", "-w", dist, src)
    (wheel,) = dist.glob("edgefleet-*.whl")
    return wheel


@dataclass(frozen=True)
class Wheels:
    """The edgefleet wheel built from this tree and an offline wheelhouse per lock (``agent``, ``dashboard``)."""

    edgefleet: Path
    houses: dict[str, Path]

    def archive(self, lock: str) -> Path:
        """The wheelhouse as the roles take it: the archive ``scripts/wheelhouse.sh`` writes beside the folder."""
        return self.houses[lock].with_name(self.houses[lock].name + ".tar")


def build_wheels(out_dir: Path, locks: tuple[str, ...]) -> Wheels:
    houses = {lock: offline_wheelhouse(lock) for lock in locks}
    return Wheels(build_edgefleet_wheel(out_dir / "edgefleet-build"), houses)
