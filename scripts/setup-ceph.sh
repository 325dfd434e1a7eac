#!/usr/bin/env bash
# Set-up for the Ceph RBD driver and its tests (run by scripts/setup.sh; idempotent).
#
#   - Debian's Ceph packages: a monitor, an OSD and a manager for the one-node test
#     cluster (tests/utils/ceph.sh), the ceph/rbd CLIs, the rados/rbd Python bindings,
#     and qemu's rbd block driver (qemu-io data checks on rbd: URIs).
#   - .venv-rbd: the module interpreter for rbd tasks. Debian builds the Ceph bindings
#     for its own /usr/bin/python3.11 only (under 3.12 they fail with
#     "undefined symbol: _PyUnicode_Ready"), so this venv is made from that Python with
#     --system-site-packages and gets the collection's module-side requirements.
#     The controller keeps running .venv (Python >= 3.12, ansible-core).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
RBD_VENV=${BLOCKSTORE_RBD_VENV:-$REPO/.venv-rbd}
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
SYSTEM_PYTHON=$RBD_SYSTEM_PYTHON

APT_PACKAGES=(
  ceph-mon ceph-osd     # the test cluster's daemons
  ceph-mgr              # capacity stats: the monitors' df/pool stats come from the manager's reports
  ceph-common           # ceph and rbd command-line tools
  python3-rados python3-rbd  # the bindings the driver imports (Debian's python3.11 only)
  qemu-block-extra      # qemu-io/qemu-img rbd: URIs for the tests' data checks
)
apt_ensure "${APT_PACKAGES[@]}"
# The packages start nothing we want: the test cluster runs its own daemons from a temp dir.

[ -x "$SYSTEM_PYTHON" ] || { echo "setup-ceph: $SYSTEM_PYTHON (Debian's python3.11) is missing" >&2; exit 1; }
if [ ! -x "$RBD_VENV/bin/python" ]; then
  echo "creating $RBD_VENV from $SYSTEM_PYTHON (--system-site-packages, for the rados/rbd bindings)"
  "$SYSTEM_PYTHON" -m venv --system-site-packages "$RBD_VENV"
fi
install_locked "$RBD_VENV" .requirements.sha256 constraints/rbd.txt -r requirements.txt
"$RBD_VENV/bin/python" -c 'import rados, rbd' || {
  echo "setup-ceph: $RBD_VENV/bin/python cannot import the Ceph bindings (python3-rados, python3-rbd)" >&2
  exit 1
}
echo "Ceph $(ceph --version | cut -d' ' -f3); rbd module interpreter: $RBD_VENV/bin/python"
