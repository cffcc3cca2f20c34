"""``scripts/wheelhouse.sh aarch64``: the offline wheel set for a 64-bit Raspberry Pi is complete and hash-true.

Checked here independently of the script's own dry run: every requirement the agent's lock pins for Python 3.11 on
aarch64 has exactly one wheel whose tags a Pi accepts; every downloaded wheel's sha256 is one the lock lists; a
wheel built from an sdist (pyflac has no wheels on the index) is named by the script and hashed in the
wheelhouse's own lock; every native library inside is aarch64 code; and pip resolves the whole lock from the
wheelhouse alone for that platform.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.integration.ansible.wheelhouse import LOCKS, REPO, WHEELHOUSE_SCRIPT, index_reachable

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not index_reachable(), reason="the package index is not reachable"),
]

PYTHON = (3, 11)
GLIBC_MINOR = 36  # Debian / Raspberry Pi OS bookworm
PLATFORMS = ["linux_aarch64", "manylinux2014_aarch64"] + [
    f"manylinux_2_{minor}_aarch64" for minor in range(17, GLIBC_MINOR + 1)
]
PI_ENVIRONMENT = {  # marker values of a Pi's Python 3.11
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
EM_AARCH64 = 183  # ELF e_machine


def locked(path: Path) -> dict[str, tuple[Requirement, set[str]]]:
    """``{name: (requirement, sha256 set)}`` of a hash lock, only the requirements a Pi's Python needs."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    entries: dict[str, tuple[Requirement, set[str]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *hashes = line.split(" --hash=sha256:")
        requirement = Requirement(spec.strip())
        if requirement.marker is None or requirement.marker.evaluate(PI_ENVIRONMENT):
            entries[canonicalize_name(requirement.name)] = (requirement, {h.strip() for h in hashes})
    return entries


def _pi_tags() -> set[Tag]:
    return {*cpython_tags(PYTHON, ["cp311"], PLATFORMS), *compatible_tags(PYTHON, "cp311", PLATFORMS)}


def _machines(wheel: Path, pattern: str) -> dict[str, int]:
    """The ELF machine of every file inside the wheel whose name matches ``pattern``."""
    found = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if re.search(pattern, name):
                header = archive.read(name)[:20]
                assert header[:4] == b"\x7fELF", name
                found[name] = int.from_bytes(header[18:20], "little")
    return found


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The aarch64 wheel set of the agent's lock, made afresh (downloads ~40 MB) and the script's output."""
    out = tmp_path_factory.mktemp("wheelhouse") / "aarch64-agent"
    env = {**os.environ, "PIP": str(Path(sys.executable).parent / "pip")}
    result = subprocess.run(
        ["bash", str(WHEELHOUSE_SCRIPT), "aarch64", str(LOCKS / "agent.txt"), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out, result.stdout


def test_every_pinned_requirement_has_exactly_one_wheel_a_pi_accepts(wheelhouse: tuple[Path, str]) -> None:
    out, _ = wheelhouse
    wanted = locked(LOCKS / "agent.txt")
    wheels = {}
    for wheel in out.glob("*.whl"):
        name, version, _, tags = parse_wheel_filename(wheel.name)
        assert name not in wheels, f"two wheels for {name}"
        assert tags & _pi_tags(), f"{wheel.name}: no tag a Pi's Python 3.11 accepts"
        assert wanted[name][0].specifier.contains(version), wheel.name
        wheels[name] = wheel
    assert set(wheels) == set(wanted)
    assert sorted(p.name for p in out.iterdir() if p.suffix != ".whl") == ["requirements.txt"]
    assert (out.parent / "aarch64-agent.tar").is_file()  # what the Ansible role copies


def test_every_wheel_is_hash_checked(wheelhouse: tuple[Path, str]) -> None:
    out, stdout = wheelhouse
    lock, own = locked(LOCKS / "agent.txt"), locked(out / "requirements.txt")
    built = set(re.findall(r"^wheelhouse: built (\S+\.whl)", stdout, re.MULTILINE))
    for wheel in out.glob("*.whl"):
        name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert sha in own[name][1], f"{wheel.name} is not in the wheelhouse's lock"
        if wheel.name in built:  # from an sdist the lock pins: its hash is the wheelhouse's own
            assert sha not in lock[name][1]
            assert own[name][1] - {sha} == lock[name][1]
        else:
            assert sha in lock[name][1], f"{wheel.name} was downloaded but its hash is not in the lock"
    assert {canonicalize_name(parse_wheel_filename(w)[0]) for w in built} == {"pyflac"}  # sdist only on the index


def test_native_code_is_aarch64(wheelhouse: tuple[Path, str]) -> None:
    """Every Python extension module, and the libFLAC pyflac's modules load (it bundles one per platform)."""
    out, _ = wheelhouse
    modules = {}
    for wheel in out.glob("*.whl"):
        modules.update(_machines(wheel, r"\.(abi3|cpython-311-[\w-]+)\.so$"))
    assert "pyflac/_encoder.abi3.so" in modules  # cross-built here
    assert set(modules.values()) == {EM_AARCH64}, modules
    (pyflac,) = out.glob("pyflac-*.whl")
    assert set(_machines(pyflac, r"libraries/linux-arm64/.*\.so").values()) == {EM_AARCH64}


def test_pip_resolves_the_lock_from_the_wheelhouse_alone_for_a_pi(wheelhouse: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = wheelhouse
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--dry-run", "--ignore-installed",
            "--no-index", "--find-links", str(out), "--only-binary=:all:", "--require-hashes", *platforms,
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--target", str(tmp_path / "t"),
            "--report", str(tmp_path / "report.json"), "-r", str(out / "requirements.txt")]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {canonicalize_name(item["metadata"]["name"]) for item in report["install"]}
    assert resolved == set(locked(LOCKS / "agent.txt"))
