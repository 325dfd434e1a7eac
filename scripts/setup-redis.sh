#!/usr/bin/env bash
# Set-up for the Redis example state store (extensions/stores/blockstore-store-redis) and its tests;
# run by scripts/setup.sh with BLOCKSTORE_VENV; idempotent.
#
#   redis-server   the tests start a throwaway server of their own (tests/utils/redis.sh); nothing is started here
# Python: the store's package, pip-installed into the controller venv as a user installs a store (it is
# not a dependency of the collection); its client library `redis` is locked in constraints/controller.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}

apt_ensure redis-server
command -v redis-server >/dev/null || { echo "setup-redis: redis-server is missing after install" >&2; exit 1; }
if [ -x "$VENV/bin/python" ]; then
  # Reinstalled every time: the package's code is in this checkout and may have changed.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    -c constraints/controller.txt extensions/stores/blockstore-store-redis
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/controller.txt \
    extensions/stores/blockstore-store-redis
fi
