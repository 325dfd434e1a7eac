#!/usr/bin/env bash
# The built collection, as a user gets it: `ansible-galaxy collection build`, then
# `ansible-galaxy collection install` OFFLINE into EMPTY paths, then a playbook and an ad-hoc
# command that see only those paths. Checks what build_ignore keeps out, prints the size.
#
#   bash tests/packaging/galaxy_install.sh        (run by: bash scripts/test.sh packaging)
#
# Needs scripts/setup.sh (the dependency tarballs in $BLOCKSTORE_COLLECTIONS_CACHE, from setup-role.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
CACHE=${BLOCKSTORE_COLLECTIONS_CACHE:-$HOME/.cache/blockstore/collections}
export PATH="$VENV/bin:$PATH" ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# Only the paths named below: no collection from site-packages (a pip-installed `ansible`) either.
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_NOCOLOR=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-galaxy.XXXXXX")
cleanup() {
  # The role's mount and loop device, should a step have failed half-way.
  if mountpoint -q "$tmp/mnt/data" 2>/dev/null; then umount "$tmp/mnt/data"; fi
  losetup --list --noheadings --raw --output NAME,BACK-FILE 2>/dev/null | awk -v d="$tmp/" 'index($2, d) == 1 {print $1}' |
    while read -r dev; do losetup -d "$dev"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "galaxy_install: FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }

deps=()
for fqcn in community-general ansible-posix community-library_inventory_filtering_v1; do
  found=$(find "$CACHE" -maxdepth 1 -name "$fqcn-*.tar.gz" 2>/dev/null | sort -V | tail -1)
  [ -n "$found" ] || fail "no $fqcn tarball in $CACHE; run scripts/setup.sh (scripts/setup-role.sh)"
  deps+=("$found")
done

step "build"
ansible-galaxy collection build --force --output-path "$tmp/build" "$REPO" >/dev/null
tarball=$(ls "$tmp"/build/blockstore-storage-*.tar.gz)
size=$(stat -c %s "$tarball")
files=$(tar tzf "$tarball" | wc -l)
echo "tarball $(basename "$tarball"): $size bytes ($((size / 1024)) KiB), $files entries"

step "build_ignore keeps work files out, and what users need is in"
tar tzf "$tarball" >"$tmp/listing"
# Work files, and what only the project's developers use: the test suite, the set-up scripts (they install
# apt packages), the locks, benchmarks, dev requirements, changelog fragments (CHANGELOG.rst has them),
# ansible-navigator's artifacts and log.
if grep -E '(^|/)(\.venv[^/]*|\.ansible|\.git|__pycache__|\.pytest_cache|\.ruff_cache|\.mypy_cache)(/|$)|\.pyc$|\.tar\.gz$' "$tmp/listing" ||
   grep -E '^(tests|scripts|constraints|bench|changelogs/fragments)(/|$)|^(requirements-dev|requirements-importer)\.txt$' "$tmp/listing" ||
   grep -E '(^|/)[^/]*-artifact-[^/]*\.json$|(^|/)ansible-navigator\.log$' "$tmp/listing"; then
  fail "the tarball holds the files listed above; add them to build_ignore in galaxy.yml"
fi
for wanted in MANIFEST.json FILES.json COPYING README.md CHANGELOG.rst changelogs/changelog.yaml \
              meta/runtime.yml meta/execution-environment.yml requirements.txt bindep.txt \
              plugins/modules/storage_volume.py plugins/action/storage.py roles/volume/tasks/main.yml \
              roles/volume/meta/argument_specs.yml extensions/molecule/config.yml docs/awx/inputs.yml \
              docs/awx/injectors.yml; do
  grep -qx "$wanted" "$tmp/listing" || fail "$wanted is missing from the tarball"
done
grep -q '"community.general": ">=' <(tar xzf "$tarball" -O MANIFEST.json) || fail "MANIFEST.json lacks the dependencies"

step "install --offline into an empty path, without the dependencies: refused, naming what is missing"
mkdir -p "$tmp/alone"
if ANSIBLE_COLLECTIONS_PATH="$tmp/alone" ansible-galaxy collection install --offline -p "$tmp/alone" "$tarball" \
     >"$tmp/alone.log" 2>&1; then
  fail "install without its dependencies succeeded offline"
fi
grep -q "community.general" "$tmp/alone.log" || { cat "$tmp/alone.log"; fail "the refusal does not name community.general"; }

step "install --offline into an empty path with the dependencies' tarballs"
mkdir -p "$tmp/full"
ANSIBLE_COLLECTIONS_PATH="$tmp/full" ansible-galaxy collection install --offline -p "$tmp/full" "$tarball" "${deps[@]}" \
  >"$tmp/full.log" 2>&1 || { cat "$tmp/full.log"; fail "offline install with the dependencies"; }
for fqcn in blockstore/storage community/general ansible/posix; do
  [ -f "$tmp/full/ansible_collections/$fqcn/MANIFEST.json" ] || fail "$fqcn not installed into the empty path"
done

step "install --offline --no-deps into an empty path; the dependencies in a path of their own"
mkdir -p "$tmp/ours" "$tmp/deps"
ANSIBLE_COLLECTIONS_PATH="$tmp/ours" ansible-galaxy collection install --offline --no-deps -p "$tmp/ours" "$tarball" \
  >"$tmp/ours.log" 2>&1 || { cat "$tmp/ours.log"; fail "offline --no-deps install"; }
ANSIBLE_COLLECTIONS_PATH="$tmp/deps" ansible-galaxy collection install --offline -p "$tmp/deps" "${deps[@]}" \
  >"$tmp/deps.log" 2>&1 || { cat "$tmp/deps.log"; fail "offline install of the dependencies"; }
[ "$(ls "$tmp/ours/ansible_collections")" = blockstore ] || fail "--no-deps installed more than blockstore.storage"

step "with the dependencies installed, a plain --offline install resolves them from the configured paths"
mkdir -p "$tmp/again"
ANSIBLE_COLLECTIONS_PATH="$tmp/again:$tmp/deps" ansible-galaxy collection install --offline -p "$tmp/again" "$tarball" \
  >"$tmp/again.log" 2>&1 || { cat "$tmp/again.log"; fail "offline install with the dependencies already installed"; }

cat >"$tmp/play.yml" <<'YAML'
- name: The installed collection's modules and role
  hosts: localhost
  gather_facts: false
  vars:
    work: "{{ lookup('ansible.builtin.env', 'WORK') }}"
    backend: {name: packaged, driver: file, path: "{{ work }}/volumes"}
    persistence: {storage: file, path: "{{ work }}/state.json"}
  environment:
    BLOCKSTORE_RUN_DIR: "{{ work }}/run"
  tasks:
    - name: A volume
      blockstore.storage.storage_volume: {name: v1, size: 1, backend: "{{ backend }}", persistence: "{{ persistence }}"}
      register: created
    - name: The same volume again
      blockstore.storage.storage_volume: {name: v1, size: 1, backend: "{{ backend }}", persistence: "{{ persistence }}"}
      register: again
    - name: Listed
      blockstore.storage.storage_volume_info: {backend: "{{ backend }}", persistence: "{{ persistence }}"}
      register: listed
    - name: Created once, listed
      ansible.builtin.assert:
        that:
          - created is changed and again is not changed
          - listed.volumes | map(attribute='name') | list == ['v1']
    - name: The role, with community.general.filesystem and ansible.posix.mount
      ansible.builtin.include_role:
        name: blockstore.storage.volume
      vars:
        volume_backend: "{{ backend }}"
        volume_persistence: "{{ persistence }}"
        volume_fstab: "{{ work }}/fstab"
        volume_volumes: [{name: data, size: 1, mount_point: "{{ work }}/mnt/data"}]
    - name: Mounted, recorded by UUID
      ansible.builtin.assert:
        that:
          - lookup('ansible.builtin.file', work + '/fstab') is search('UUID=' + volume_results.data.uuid)
          - (work + '/mnt/data') is ansible.builtin.mount
    - name: The role removes it
      ansible.builtin.include_role:
        name: blockstore.storage.volume
      vars:
        volume_backend: "{{ backend }}"
        volume_persistence: "{{ persistence }}"
        volume_fstab: "{{ work }}/fstab"
        volume_volumes: [{name: data, state: absent, mount_point: "{{ work }}/mnt/data"}, {name: v1, state: absent}]
    - name: Nothing left
      blockstore.storage.storage_volume_info: {backend: "{{ backend }}", persistence: "{{ persistence }}"}
      register: left
      failed_when: left.volumes | length > 0
YAML

run_play() {  # run_play LABEL COLLECTIONS_PATH
  step "playbook with ANSIBLE_COLLECTIONS_PATH=$2"
  rm -rf "$tmp/work" && mkdir -p "$tmp/work"
  WORK="$tmp/work" ANSIBLE_COLLECTIONS_PATH="$2" ansible-playbook -i localhost, -c local \
    -e "ansible_python_interpreter=$VENV/bin/python" "$tmp/play.yml" >"$tmp/$1.play.log" 2>&1 ||
    { tail -40 "$tmp/$1.play.log"; fail "playbook on the $1 install"; }
  grep -q "failed=0" "$tmp/$1.play.log" || fail "playbook on the $1 install: no recap"
}
run_play full "$tmp/full"
run_play no-deps "$tmp/ours:$tmp/deps"

step "the module comes from the installed tarball, and works ad hoc"
ANSIBLE_COLLECTIONS_PATH="$tmp/ours:$tmp/deps" ansible-doc -t module blockstore.storage.storage_volume 2>/dev/null |
  head -2 | grep -q "$tmp/ours/ansible_collections/blockstore/storage" || fail "ansible-doc does not find the installed module"
rm -rf "$tmp/work" && mkdir -p "$tmp/work"
ANSIBLE_COLLECTIONS_PATH="$tmp/ours:$tmp/deps" ansible localhost -c local -e "ansible_python_interpreter=$VENV/bin/python" \
  -m blockstore.storage.storage_volume \
  -a "name=adhoc size=1 backend={\"name\":\"lab\",\"driver\":\"file\",\"path\":\"$tmp/work/vols\"} persistence={\"path\":\"$tmp/work/state.json\"}" \
  >"$tmp/adhoc.log" 2>&1 || { cat "$tmp/adhoc.log"; fail "ad-hoc storage_volume"; }
grep -q '"changed": true' "$tmp/adhoc.log" || { cat "$tmp/adhoc.log"; fail "ad-hoc storage_volume did not create"; }
echo "galaxy_install: ok (tarball $size bytes)"
