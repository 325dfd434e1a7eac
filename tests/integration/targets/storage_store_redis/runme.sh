#!/usr/bin/env bash
# The Redis example store (extensions/stores/blockstore-store-redis, pip-installed by
# scripts/setup-redis.sh) as the state store of real playbooks: the shared storage suite
# (volumes, snapshots) and the attachment tasks, by its entry point name `redis`; then the same
# Redis through a store shipped in a collection by FQCN (files/collections: blockstore_test.stores);
# then bad store options and names, which must fail clearly and show no secret.
# Needs a Redis: BLOCKSTORE_TEST_REDIS_URL, or blockstore_test_redis_url in integration_config.yml
# (scripts/test.sh starts one with tests/utils/redis.sh and writes it there).
set -euo pipefail

python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
redis_url=$(setting BLOCKSTORE_TEST_REDIS_URL)
if [ -z "$redis_url" ]; then
  echo "storage_store_redis: no Redis: set BLOCKSTORE_TEST_REDIS_URL (scripts/test.sh starts one)" >&2
  exit 1
fi
# Found, not imported: it imports the collection, which only Ansible's collection loader makes importable.
"$python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("blockstore_store_redis") is None)' || {
  echo "storage_store_redis: the package blockstore-store-redis is not installed (scripts/setup-redis.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-store-redis.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The URL holds a password: it goes in a 0600 file, never on a command line.
(umask 077; "$python" -c 'import json, sys; print(json.dumps({"redis_url": sys.argv[1], "redis_prefix": sys.argv[2]}))' \
  "$redis_url" "it-$$-$RANDOM" > "$work/store.json")

export ANSIBLE_COLLECTIONS_PATH="$PWD/files/collections:${ANSIBLE_COLLECTIONS_PATH:-}"
export ANSIBLE_ROLES_PATH="$PWD/..:${ANSIBLE_ROLES_PATH:-}"
ansible-playbook -i localhost, -c local store.yml -e "@$work/store.json" -e "ansible_python_interpreter=$python" "$@"
