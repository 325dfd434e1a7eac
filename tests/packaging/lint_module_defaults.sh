#!/usr/bin/env bash
# The recommended pattern lints clean OUTSIDE this repository: a user's playbook that sets backend and
# persistence once with `module_defaults: group/blockstore.storage.storage` must get no warning from
# ansible-lint (production profile, plus the args rule, which validates each task's arguments against the
# module's argument spec and so reports "missing required arguments" it cannot see module_defaults fill).
# Positive control: the same playbook with a misspelt option must get the args warning naming it.
#
#   bash tests/packaging/lint_module_defaults.sh     (run by: bash scripts/test.sh packaging)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
export PATH="$VENV/bin:$PATH" ANSIBLE_NOCOLOR=1 NO_COLOR=1 ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
tmp=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-lint-defaults.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "lint_module_defaults: FAILED: $*" >&2; exit 1; }

# The collection as a user has it: in a collections path of its own, without the repository around it.
coll="$tmp/collections/ansible_collections/blockstore/storage"
mkdir -p "$coll"
rsync -a --exclude .git --filter=':- .gitignore' "$REPO/" "$coll/"
export ANSIBLE_COLLECTIONS_PATH="$tmp/collections"
# ansible-lint also looks in ~/.ansible/collections, where scripts/setup.sh may have installed another copy:
# a HOME of its own makes sure the copy linted is this one.
mkdir -p "$tmp/home"
export HOME="$tmp/home"

mkdir -p "$tmp/user"
cat >"$tmp/user/.ansible-lint" <<'YAML'
---
profile: production
enable_list:
  - args
YAML
cat >"$tmp/user/site.yml" <<'YAML'
---
- name: Volumes for the lab
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/blockstore.storage.storage:
      backend:
        name: lab
        driver: file
        path: /var/lib/blockstore/lab
      persistence:
        storage: file
        path: /var/lib/blockstore/state.json
  tasks:
    - name: Data volume exists
      blockstore.storage.storage_volume:
        name: data
        size: 1
    - name: Snapshot of data exists
      blockstore.storage.storage_snapshot:
        name: before
        volume: data
    - name: Volumes are listed
      blockstore.storage.storage_volume_info:
      register: volumes
YAML
sed 's/^        size: 1$/        sise: 1/' "$tmp/user/site.yml" >"$tmp/user/typo.yml"
grep -q 'sise: 1' "$tmp/user/typo.yml" || fail "the control playbook was not made"

cd "$tmp/user"
echo "-- ansible-lint --strict on a playbook using module_defaults"
if ! ansible-lint --offline --strict site.yml >"$tmp/site.log" 2>&1; then
  cat "$tmp/site.log"
  fail "ansible-lint warns on the module_defaults pattern"
fi
if grep -q "missing required arguments" "$tmp/site.log"; then
  cat "$tmp/site.log"
  fail "ansible-lint reports missing arguments"
fi

echo "-- control: the same playbook with a misspelt option is reported by the args rule"
if ansible-lint --offline --strict typo.yml >"$tmp/typo.log" 2>&1; then
  cat "$tmp/typo.log"
  fail "ansible-lint passed a misspelt option: the args rule did not run"
fi
if ! grep -q "args\[module\].*sise" "$tmp/typo.log"; then
  cat "$tmp/typo.log"
  fail "the args rule did not name the misspelt option"
fi
echo "lint_module_defaults: ok"
