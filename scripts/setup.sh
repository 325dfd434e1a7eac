#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for blockstore.storage, then run the quick-start demo.
#
#   bash scripts/setup.sh            # as root (apt packages)
#
# Installs: apt packages the modules and tests use; a venv (.venv) on Python >= 3.12
# with ansible-core 2.21.x and the dev tools, at the versions of constraints/controller.txt; the collection itself, built and
# installed into ~/.ansible/collections as a user would. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
log() { printf '\n== %s\n' "$*"; }

APT_PACKAGES=(
  qemu-utils            # qemu-img, qemu-io: qcow2 images and the tests' data checks
  xfsprogs btrfs-progs  # reflink-capable filesystems on loop devices (tests, benchmarks)
  postgresql            # a throwaway server for the db store tests (tests/utils/postgres.sh)
  rsync                 # the test script syncs the checkout into a collections tree
  e2fsprogs util-linux  # mkfs.ext4, losetup
)
log "apt packages: ${APT_PACKAGES[*]}"
apt_ensure "${APT_PACKAGES[@]}"

log "Python >= 3.12 for ansible-core 2.21"
PY=$(controller_python) || { echo "setup: no Python >= 3.12 found; set BLOCKSTORE_PYTHON to one" >&2; exit 1; }
echo "using $PY"

# Every venv installs the exact versions of its lock (constraints/, made by scripts/lock.sh).
log "venv $VENV (locked by constraints/controller.txt)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/controller.txt pip >/dev/null
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/controller.txt -r requirements-dev.txt

# ansible-test bootstraps pip in its venvs with a script from a host outside PyPI:
# put an equivalent that uses ensurepip + PyPI where it looks for its cached copy.
pip_pin=$("$VENV/bin/python" - <<'PY'
import re, ansible_test, pathlib
text = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp tests/utils/get_pip_offline.py ~/.ansible/test/cache/"get_pip_${pip_pin//./_}.py"

# The guest image build (setup-guest.sh, minutes of debootstrap on a fresh machine) runs beside the other set-ups,
# which mostly wait on PyPI and apt (apt_ensure waits for apt's lock); its output is shown when it ends.
guest_setup_pid=""
guest_setup_log=$(mktemp "${TMPDIR:-/tmp}/blockstore-setup-guest.XXXXXX")
# Another set-up failing (set -e) ends this script: the image build is stopped, and what it printed is shown.
guest_setup_abandon() {
  [ -n "$guest_setup_pid" ] || return 0
  kill -TERM -- "-$guest_setup_pid" 2>/dev/null  # its process group: the build and all it started
  wait "$guest_setup_pid" 2>/dev/null || true
  echo "setup: scripts/setup-guest.sh was stopped; its output so far:" >&2
  cat "$guest_setup_log" >&2
  rm -f "$guest_setup_log"
}
trap guest_setup_abandon EXIT
for extra in scripts/setup-*.sh; do
  [ -e "$extra" ] || continue
  if [ "$extra" = scripts/setup-guest.sh ]; then
    log "feature set-up $extra (in the background, output below when it ends)"
    # setsid: a process group of its own, which guest_setup_abandon can stop whole
    BLOCKSTORE_VENV="$VENV" setsid bash "$extra" >"$guest_setup_log" 2>&1 &
    guest_setup_pid=$!
    continue
  fi
  log "feature set-up $extra"
  BLOCKSTORE_VENV="$VENV" bash "$extra"
done
if [ -n "$guest_setup_pid" ]; then
  guest_setup_rc=0
  wait "$guest_setup_pid" || guest_setup_rc=$?
  log "feature set-up scripts/setup-guest.sh (ran in the background)"
  cat "$guest_setup_log"
  rm -f "$guest_setup_log"
  guest_setup_pid=""
  [ "$guest_setup_rc" -eq 0 ] || { echo "setup: scripts/setup-guest.sh failed (exit $guest_setup_rc)" >&2; exit 1; }
fi
trap - EXIT

log "build and install the collection into ~/.ansible/collections"
build_dir=$(mktemp -d)
"$VENV/bin/ansible-galaxy" collection build --force --output-path "$build_dir" "$REPO" >/dev/null
# --offline: Galaxy is out of reach here; the dependencies (galaxy.yml) were installed by setup-role.sh.
"$VENV/bin/ansible-galaxy" collection install --offline --force "$build_dir"/blockstore-storage-*.tar.gz >/dev/null
rm -rf "$build_dir"

log "quick-start demo (examples/quickstart.yml)"
ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
  "$VENV/bin/ansible-playbook" examples/quickstart.yml -e "ansible_python_interpreter=$VENV/bin/python"
log "set-up done: activate with '. $VENV/bin/activate'"
