#!/usr/bin/env bash
# Build an offline wheelhouse from a hash lock, for a target CPU: every pinned requirement as a wheel, plus the
# wheelhouse's own hash lock (requirements.txt) that the Ansible role installs with --require-hashes --no-index.
#
# Usage: scripts/wheelhouse.sh ARCH [LOCK] [OUT]
#   ARCH  aarch64 (64-bit Raspberry Pi OS), x86_64, or native (this machine's interpreter and CPU)
#   LOCK  the hash lock, default requirements/agent.txt (the Pis)
#   OUT   the folder to write, default dist/wheelhouse-ARCH-<lock name>; emptied first. OUT.tar holds the same
#         files: the archive the Ansible roles copy (edge_agent_wheelhouse / central_wheelhouse)
# Environment: PYTHON_VERSION (default 3.11: Debian/Raspberry Pi OS bookworm), GLIBC (default 2.36: bookworm),
#   PIP (default .venv/bin/pip; python beside it builds the wheels).
#
# 1. pip download --no-deps --require-hashes: the wheel for the target where PyPI has one (manylinux up to GLIBC),
#    else the sdist, each checked against the lock's sha256.
# 2. Each sdist is built into a wheel here. A pure-Python one gives a py3-none-any wheel; one with C code is built
#    for a foreign ARCH with the cross compiler <triplet>-gcc (Debian: gcc-aarch64-linux-gnu and
#    libc6-dev-arm64-cross), which needs this machine's Python to be PYTHON_VERSION.
# 3. OUT/requirements.txt is LOCK with the sha256 of every wheel built in step 2 added to its requirement (the
#    sdist it came from was checked against LOCK in step 1). The sdists are not kept.
# 4. pip install --dry-run --no-index --require-hashes for the target resolves the whole lock from OUT alone.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:?"usage: scripts/wheelhouse.sh ARCH [LOCK] [OUT]  (ARCH: aarch64, x86_64 or native)"}
lock=${2:-requirements/agent.txt}
out=${3:-dist/wheelhouse-$arch-$(basename "$lock" .txt)}
PIP=${PIP:-.venv/bin/pip}
PYTHON=$(dirname "$PIP")/python
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
GLIBC=${GLIBC:-2.36}

[ -f "$lock" ] || { echo "wheelhouse: no lock file $lock" >&2; exit 2; }
target=()  # pip's options for the target interpreter and platform
case "$arch" in
  native) ;;
  aarch64 | x86_64)
    abi="cp${PYTHON_VERSION/./}"
    target=(--python-version "$PYTHON_VERSION" --implementation cp --abi "$abi" --platform "linux_$arch"
      --platform "manylinux2014_$arch")
    for ((minor = 17; minor <= ${GLIBC#2.}; minor++)); do target+=(--platform "manylinux_2_${minor}_$arch"); done
    ;;
  *) echo "wheelhouse: ARCH must be aarch64, x86_64 or native (armv7: see docs/ansible.md)" >&2; exit 2 ;;
esac
machine=$("$PYTHON" -c 'import platform; print(platform.machine())')
cross=false
if [ "$arch" != native ] && [ "$arch" != "$machine" ]; then cross=true; fi

rm -rf "$out" "$out.tar"
mkdir -p "$out"
echo "wheelhouse: downloading $lock for $arch (hash-checked)"
"$PIP" download -q --disable-pip-version-check --no-deps --require-hashes ${target[@]+"${target[@]}"} \
  -d "$out" -r "$lock" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

cp "$lock" "$out/requirements.txt"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# pyFLAC-style build scripts pick bundled libraries by platform.machine(): tell them the target's.
mkdir -p "$build/fake-machine"
printf 'import platform\nplatform.machine = lambda: %s\n' "'$arch'" > "$build/fake-machine/sitecustomize.py"

build_wheel() {  # build_wheel SDIST: a wheel for the target in $build/wheels, hash-checked input already
  local sdist=$1 src
  src="$build/src/$(basename "$sdist")"
  mkdir -p "$src"
  tar -xf "$sdist" -C "$src" --strip-components=1
  if $cross; then
    command -v "$arch-linux-gnu-gcc" >/dev/null || {
      echo "wheelhouse: $(basename "$sdist") has no $arch wheel on the index and needs $arch-linux-gnu-gcc" \
        "(Debian: apt-get install gcc-$arch-linux-gnu libc6-dev-${arch/aarch64/arm64}-cross)" >&2; exit 1; }
    [ "$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$PYTHON_VERSION" ] || {
      echo "wheelhouse: cross-building needs Python $PYTHON_VERSION here (its headers and tags)" >&2; exit 1; }
    PYTHONPATH="$build/fake-machine" CC="$arch-linux-gnu-gcc" LDSHARED="$arch-linux-gnu-gcc -shared" \
      _PYTHON_HOST_PLATFORM="linux-$arch" "$PIP" wheel -q --disable-pip-version-check --no-deps \
      --no-build-isolation --no-index -w "$build/wheels" "$src"
  else
    "$PIP" wheel -q --disable-pip-version-check --no-deps --no-build-isolation --no-index -w "$build/wheels" "$src"
  fi
}

shopt -s nullglob
for sdist in "$out"/*.tar.gz "$out"/*.zip; do
  echo "wheelhouse: no wheel on the index for $(basename "$sdist"): building one"
  build_wheel "$sdist" > "$build/log" 2>&1 || { cat "$build/log" >&2; exit 1; }
  rm "$sdist"
done
for wheel in "$build"/wheels/*.whl; do
  name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
  version=$(basename "$wheel" | cut -d- -f2)
  if $cross && [[ "$(basename "$wheel")" != *-none-any.whl && "$(basename "$wheel")" != *"_$arch.whl" ]]; then
    echo "wheelhouse: $(basename "$wheel") was not built for $arch" >&2; exit 1
  fi
  grep -q -i "^$name==$version\b" "$out/requirements.txt" || { echo "wheelhouse: $name==$version not in $lock" >&2; exit 1; }
  sha=$(sha256sum "$wheel" | cut -d' ' -f1)
  sed -i "/^$name==$version[ ;]/I a\    --hash=sha256:$sha \\\\" "$out/requirements.txt"
  mv "$wheel" "$out/"
  echo "wheelhouse: built $(basename "$wheel") (sha256 $sha, added to $out/requirements.txt)"
done

echo "wheelhouse: checking that $out alone satisfies the lock for $arch"
check=(--dry-run --ignore-installed --no-index --find-links "$out" --only-binary=:all: --require-hashes)
if [ ${#target[@]} -gt 0 ]; then check+=("${target[@]}" --target "$build/target"); fi
"$PIP" install -q --disable-pip-version-check "${check[@]}" -r "$out/requirements.txt" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
tar -C "$out" -cf "$out.tar" .
echo "wheelhouse: $out ready ($(find "$out" -name '*.whl' | wc -l) wheels), archived as $out.tar for Ansible" \
  "(edge_agent_wheelhouse); by hand: pip install --require-hashes --no-index --find-links $out -r $out/requirements.txt"
