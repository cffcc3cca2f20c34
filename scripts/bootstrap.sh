#!/usr/bin/env bash
# Install everything edgefleet's demo and tests need on a fresh Debian machine (idempotent):
# Debian packages (Mosquitto, Prometheus and promtool, flac, rclone, Chromium, iproute2, PostgreSQL), then .venv from the hash-pinned locks:
# requirements/build.txt (current pip, setuptools, wheel) first, then requirements/dev.txt, then edgefleet itself
# (editable, no dependencies of its own: they all come from the lock). scripts/lock.sh regenerates the locks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients prometheus flac rclone chromium iproute2 sox postgresql procps
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross)  # the last two: scripts/wheelhouse.sh aarch64 cross-builds pyflac
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.edgefleet-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/build.txt -nt "$stamp" ] \
  || [ requirements/dev.txt -nt "$stamp" ]; then
  echo "bootstrap: pip, setuptools, wheel from requirements/build.txt (hash-checked)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/build.txt
  echo "bootstrap: dependencies from requirements/dev.txt (hash-checked)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
  echo "bootstrap: edgefleet itself (editable, --no-deps)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
echo "bootstrap: ready"
