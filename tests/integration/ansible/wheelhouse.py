"""Offline installs for the Ansible tests: the edgefleet wheel and a wheelhouse of its dependencies.

The roles install ``edgefleet[agent]`` (Pis) and ``edgefleet[dashboard]`` (central node) into fresh virtual
environments with pip. To stay fast and work without a network, the tests point pip at a local wheelhouse
(``--no-index --find-links``) built once per session:

- the edgefleet wheel is built from a copy of this checkout (the real setuptools backend, no build isolation);
- every dependency in the closure of the requested extras is re-packed as a wheel from the distribution that
  is already installed in this test environment (its files as listed in ``RECORD``, with a fresh ``RECORD``).

So the role's pip still resolves the extras itself, and an extra that forgets a dependency fails the test.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
# the packages the wheel holds, as pyproject.toml lists them (a new package is never left out of the copy)
_FIND = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
_PACKAGES = tuple(pattern.rstrip("*") for pattern in _FIND["include"])
_SOURCE_ITEMS = ("pyproject.toml", *_PACKAGES)
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "-w",
            dist,
            src,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("edgefleet-*.whl")
    return wheel


def requirement_closure(root: str, extras: set[str]) -> list[metadata.Distribution]:
    """The installed distributions ``root[extras]`` needs, transitively (markers evaluated here)."""
    seen: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, set[str]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not _marker_holds(req.marker, wanted):
                continue
            key = canonicalize_name(req.name)
            if key == canonicalize_name(root):
                todo.append((root, set(req.extras)))  # self-referencing extra, e.g. edgefleet[agent]
                continue
            if key not in seen:
                seen[key] = metadata.distribution(req.name)
                todo.append((req.name, set(req.extras)))
            elif req.extras:
                todo.append((req.name, set(req.extras)))
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _marker_holds(marker: Marker, extras: set[str]) -> bool:
    return any(marker.evaluate({"extra": extra}) for extra in extras or {""})


def _compressed_tag(wheel_meta: str) -> str:
    """``Tag: py2-none-any`` + ``Tag: py3-none-any`` -> ``py2.py3-none-any`` (the wheel file name tag set)."""
    triples = [line.split(":", 1)[1].strip().split("-") for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    if not triples:
        raise RuntimeError("WHEEL file without Tag lines")
    return "-".join(".".join(sorted({t[i] for t in triples})) for i in range(3))


def repack_installed(dist: metadata.Distribution, out_dir: Path) -> Path:
    """A wheel with the files of an installed distribution (scripts outside site-packages are left out)."""
    site = Path(str(dist.locate_file("")))
    wheel_meta = dist.read_text("WHEEL") or ""
    tag = _compressed_tag(wheel_meta)
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    target = out_dir / f"{name}-{dist.version}-{tag}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    dist_info = None
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for file in dist.files or []:
            rel = file.as_posix()
            parts = file.parts
            if rel.startswith("..") or "__pycache__" in parts or rel.endswith(".pyc"):
                continue
            if parts[0].endswith(".dist-info"):
                dist_info = parts[0]
                if parts[-1] in _SKIP_DIST_INFO:
                    continue
            data = (site / file).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([rel, f"sha256={digest}", len(data)])
        if dist_info is None:
            raise RuntimeError(f"{dist.metadata['Name']}: no .dist-info in RECORD")
        writer.writerow([f"{dist_info}/RECORD", "", ""])
        zf.writestr(f"{dist_info}/RECORD", record.getvalue())
    return target


def build_wheelhouse(out_dir: Path, extras: set[str]) -> tuple[Path, Path]:
    """(edgefleet wheel, wheelhouse folder holding it and every dependency of ``edgefleet[extras]``)."""
    house = out_dir / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    wheel = build_edgefleet_wheel(out_dir / "edgefleet-build")
    for dist in requirement_closure("edgefleet", extras):
        repack_installed(dist, house)
    target = house / wheel.name
    shutil.copy2(wheel, target)
    return target, house
