#!/usr/bin/env bash
# Set-up for driver `cinder` and its tests (run by scripts/setup.sh; idempotent).
#
# The adapter runs real Cinder volume drivers; its tests use cinder's RBDDriver against
# the one-node Ceph of tests/utils/ceph.sh, so cinder goes into .venv-rbd (the module
# interpreter for Ceph tasks: Debian's python3.11 with --system-site-packages, made by
# scripts/setup-ceph.sh, which setup.sh runs first). The controller venv needs no cinder.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
REPO=$(pwd)
RBD_VENV=${BLOCKSTORE_RBD_VENV:-$REPO/.venv-rbd}

if [ ! -x "$RBD_VENV/bin/python" ]; then
  # setup.sh runs the feature scripts in name order: setup-ceph.sh comes before this one.
  BLOCKSTORE_RBD_VENV="$RBD_VENV" bash scripts/setup-ceph.sh
fi
install_locked "$RBD_VENV" .requirements-cinder.sha256 constraints/rbd.txt -r requirements-cinder.txt
"$RBD_VENV/bin/python" -c 'import cinder.volume.drivers.rbd' || {
  echo "setup-cinder: $RBD_VENV/bin/python cannot import cinder.volume.drivers.rbd" >&2
  exit 1
}
echo "cinder $("$RBD_VENV/bin/python" -c 'from importlib.metadata import version; print(version("cinder"))') in $RBD_VENV"
