#!/usr/bin/env bash
# The kernel paths in Debian guest VMs (tests/utils/guest_lab.sh): gstor (a storage guest with an empty data disk)
# and gapp (a consumer), joined by two links. The lab is brought up once, each phase is one playbook run against
# its inventory, and the lab is always taken down at the end. A phase is one line: `phase NAME PLAYBOOK [args]`.
# Needs qemu and the guest image (scripts/setup-guest.sh): without them the target fails, it does not skip.
set -euo pipefail
collections=${ANSIBLE_COLLECTIONS_PATH%%:*}
collection="$collections/ansible_collections/blockstore/storage"
lab_sh="$collection/tests/utils/guest_lab.sh"
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-guest.XXXXXX")
export BLOCKSTORE_GUEST_LAB_DIR="$work/lab"
started=$SECONDS
cleanup() {
  set +e
  bash "$lab_sh" down >/dev/null
  left=$(bash "$lab_sh" holdings)
  if [ -n "$left" ]; then echo "guest: the lab left behind:"; echo "$left"; fi
  if [ -n "$(setting BLOCKSTORE_GUEST_KEEP)" ]; then echo "guest: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

shared=$(setting BLOCKSTORE_TEST_GUEST_LAB)
if [ -n "$shared" ]; then
  # scripts/test.sh boots the lab in the background while the other targets run: its result, then that lab.
  export BLOCKSTORE_GUEST_LAB_DIR=$shared
  echo "guest: waiting for the lab scripts/test.sh boots in $shared"
  for _ in $(seq 1200); do [ -s "$shared.rc" ] && break; sleep 1; done
  if [ "$(cat "$shared.rc" 2>/dev/null)" = 0 ]; then
    echo "guest: using it ($(tail -n 1 "$shared.log"))"
  else
    echo "guest: the lab booted in the background did not come up; booting one here. Its log:"
    cat "$shared.log" 2>/dev/null || true
    bash "$lab_sh" down >/dev/null
    shared=""
  fi
fi
[ -n "$shared" ] || bash "$lab_sh" up
inventory=$(bash "$lab_sh" inventory)
echo "guest: lab up after $((SECONDS - started)) s"

phase() {  # phase NAME PLAYBOOK [ansible-playbook args]: its output kept in $work/NAME.txt, shown on failure
  local name=$1 playbook=$2 phase_started=$SECONDS
  shift 2
  echo "== guest: $name"
  if ! ansible-playbook -i "$inventory" "$playbook" "$@" >"$work/$name.txt" 2>&1; then
    tail -n 80 "$work/$name.txt"
    echo "guest: $name failed"
    return 1
  fi
  sed -n '/^PLAY RECAP/,$p' "$work/$name.txt"
  echo "guest: $name took $((SECONDS - phase_started)) s"
}

# --- smoke (issue 14 item 1): both guests answer with the venv's Python, the kernel modules load, os-brick
# gathers gapp's connector, gapp reaches gstor on both links; with link 1 down only link 2 answers, then both again.
phase smoke smoke.yml
bash "$lab_sh" link gapp 1 down
phase smoke-link1-down smoke.yml -e smoke_link_down=1
bash "$lab_sh" link gapp 1 up
phase smoke-link1-up smoke.yml -e smoke_paths_only=true
# --- kernel exports on gstor, kernel attach on gapp (issue 14 items 3-4): lio (CHAP, multipath, link 1 down
# during I/O), then nvmet; each ends with nothing left on either guest.
phase kernel-lio kernel.yml -e kt=lio -e kernel_state="$work/kernel-lio.json" -e lab_sh="$lab_sh"
phase kernel-nvmet kernel.yml -e kt=nvmet -e kernel_state="$work/kernel-nvmet.json" -e lab_sh="$lab_sh"

# --- lvm (issue 14 item 2): the lvm driver thick and thin on gstor's data disk, checked by the data (lvm.yml).
phase lvm lvm.yml -e lvm_state_path="$work/lvm-state.json"

bash "$lab_sh" down
left=$(bash "$lab_sh" holdings)
if [ -n "$left" ]; then echo "guest: the lab left behind:"; echo "$left"; exit 1; fi
echo "guest: passed in $((SECONDS - started)) s"
