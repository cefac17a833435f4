#!/usr/bin/env bash
# Runs containers/Dockerfile's steps on a machine where no base image can be pulled and
# `podman run` fails (crun: "setrlimit RLIMIT_NOFILE / RLIMIT_NPROC: Operation not
# permitted", then "cgroups in hybrid mode not supported"):
#   1. the base is Debian bookworm made with debootstrap, given Python 3.11 and pip the way
#      python:3.11-slim-bookworm has them (`python` and `pip` first on PATH);
#   2. `podman build --isolation chroot` (no OCI runtime, so no setrlimit or cgroup calls)
#      runs the recipe on it, unchanged but for its FROM line (`--from`): `pip install .`
#      with the pins of pyproject.toml, then `simreg --help`;
#   3. a last build step on the result checks that every installed version equals its pin in
#      the pyproject.toml copied into the image, and that its Python is 3.11.
# Needs root, podman, debootstrap, a Debian mirror and PyPI (torch's CUDA wheels: a few GB).
#
#   containers/check_build.sh          # image: localhost/simreg:check
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/simreg-container-check}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=localhost/simreg-bookworm:debootstrap
PYTHON_BASE=localhost/simreg-python:3.11-slim-bookworm
OPTS=(--isolation chroot --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
mkdir -p "$WORK"

if ! podman image exists "$BASE"; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR"
  tar -C "$WORK/rootfs" -c . | podman import - "$BASE"
  rm -rf "$WORK/rootfs"
fi

# This machine's CA bundle goes into the base (not the recipe): where PyPI is reached through
# a TLS-inspecting proxy, only the host's bundle knows its certificate.
cp "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$WORK/host-ca.crt"
cat > "$WORK/Containerfile.python" << 'EOF'
FROM localhost/simreg-bookworm:debootstrap
COPY host-ca.crt /usr/local/share/host-ca.crt
ENV PIP_CERT=/usr/local/share/host-ca.crt
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
podman build "${OPTS[@]}" -t "$PYTHON_BASE" -f "$WORK/Containerfile.python" "$WORK"

# The recipe itself, on that base.
podman build "${OPTS[@]}" --from "$PYTHON_BASE" -t localhost/simreg:check \
  -f "$ROOT/containers/Dockerfile" "$ROOT"

cat > "$WORK/check.py" << 'EOF'
import importlib.metadata as md, re, sys, tomllib
assert sys.version_info[:2] == (3, 11), sys.version
deps = tomllib.load(open("/opt/simreg/pyproject.toml", "rb"))["project"]["dependencies"]
pins = dict(re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", d.split(";")[0].strip()).groups() for d in deps)
wrong = {n: (v, md.version(n)) for n, v in pins.items() if md.version(n) != v}
assert not wrong, f"installed versions differ from pyproject.toml: {wrong}"
import simreg, torch
print(f"image check: Python {sys.version.split()[0]}, {len(pins)} pins as in pyproject.toml, "
      f"simreg {simreg.__version__}, torch {torch.__version__}")
EOF
printf 'FROM localhost/simreg:check\nCOPY check.py /tmp/check.py\nRUN python /tmp/check.py\n' \
  > "$WORK/Containerfile.check"
podman build "${OPTS[@]}" -t localhost/simreg:checked -f "$WORK/Containerfile.check" "$WORK"
echo "container check: passed (localhost/simreg:check)"
