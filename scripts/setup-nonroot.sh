#!/usr/bin/env bash
# Set-up for the unit tests that must run as a user other than root (scripts/test.sh: units-non-root);
# run by scripts/setup.sh with BLOCKSTORE_VENV; idempotent and quick when already done.
#
# The user nobody cannot run the controller venv's Python (pyenv's, under /root, mode 0700), so these
# tests get a venv of their own from Debian's /usr/bin/python3.11, inside the checkout (readable by all),
# with what the core's unit tests need at the versions of tests/unit/constraints.txt (scripts/lock.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
NONROOT_VENV=${BLOCKSTORE_NONROOT_VENV:-$REPO/.venv-nonroot}

units_txt=$("$VENV/bin/python" -c \
  'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data/requirements/units.txt"))')
[ -x "$NONROOT_VENV/bin/python" ] || "$RBD_SYSTEM_PYTHON" -m venv "$NONROOT_VENV"
install_locked "$NONROOT_VENV" .requirements.sha256 tests/unit/constraints.txt -r "$units_txt" -r tests/unit/requirements.txt
setpriv --reuid=nobody --regid=nogroup --clear-groups "$NONROOT_VENV/bin/python" -c 'import pytest, sqlalchemy' || {
  echo "setup-nonroot: the user nobody cannot run $NONROOT_VENV/bin/python with pytest" >&2; exit 1; }
echo "non-root test venv ready: $NONROOT_VENV"
