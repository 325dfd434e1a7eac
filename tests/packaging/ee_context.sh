#!/usr/bin/env bash
# The execution environment: `ansible-builder create` on docs/awx/ee/execution-environment.yml makes
# a build context, and the build's steps that need no container engine are run here on it:
#   - the galaxy stage's `ansible-galaxy collection install -r requirements.yml` (offline, from the
#     tarballs in the context), into an empty path;
#   - the builder stage's introspection (the context's own introspect.py) of what got installed,
#     which must find blockstore.storage's requirements.txt and bindep.txt through its
#     meta/execution-environment.yml;
#   - bindep on the introspected list, default profile, as the assemble step runs it.
# Building the image needs podman or docker, which these machines do not have.
#
#   bash tests/packaging/ee_context.sh            (run by: bash scripts/test.sh packaging)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
CACHE=${BLOCKSTORE_COLLECTIONS_CACHE:-$HOME/.cache/blockstore/collections}
export PATH="$VENV/bin:$PATH" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_NOCOLOR=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-ee.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "ee_context: FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }

step "the definition beside the collection tarballs, as the docs say"
cp -r docs/awx/ee "$tmp/src"
mkdir -p "$tmp/src/collections"
ansible-galaxy collection build --force --output-path "$tmp/src/collections" "$REPO" >/dev/null
cp "$CACHE"/*.tar.gz "$tmp/src/collections/"
# requirements.yml names the tarballs by version: they must be the ones built and cached now.
grep -o 'collections/[^ ]*\.tar\.gz' "$tmp/src/requirements.yml" | while read -r wanted; do
  [ -f "$tmp/src/$wanted" ] || fail "docs/awx/ee/requirements.yml names $wanted, which was not built or cached (version changed?)"
done

step "ansible-builder create"
ansible-builder create -f "$tmp/src/execution-environment.yml" --context "$tmp/context" --output-filename Containerfile \
  >"$tmp/create.log" 2>&1 || { cat "$tmp/create.log"; fail "ansible-builder create"; }
ctx="$tmp/context"
for wanted in Containerfile _build/requirements.yml _build/scripts/introspect.py _build/scripts/assemble \
              _build/collections/$(basename "$(ls "$tmp/src/collections"/blockstore-storage-*.tar.gz)"); do
  [ -e "$ctx/$wanted" ] || fail "the build context lacks $wanted"
done
grep -q 'ansible-galaxy collection install .*-r requirements.yml' "$ctx/Containerfile" || fail "no collection install step"
grep -q 'introspect.py introspect' "$ctx/Containerfile" || fail "no introspection step"
grep -q '^ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:latest"' "$ctx/Containerfile" || fail "base image not as defined"

step "the galaxy stage's install, offline, from the context"
(cd "$ctx/_build" && ANSIBLE_COLLECTIONS_PATH="$tmp/installed" ansible-galaxy collection install --offline \
   -r requirements.yml --collections-path "$tmp/installed") >"$tmp/galaxy.log" 2>&1 ||
  { cat "$tmp/galaxy.log"; fail "ansible-galaxy collection install -r requirements.yml in the context"; }
[ -f "$tmp/installed/ansible_collections/blockstore/storage/meta/execution-environment.yml" ] ||
  fail "blockstore.storage (with its meta/execution-environment.yml) not installed from the context"

step "the builder stage's introspection of the installed collections"
python "$ctx/_build/scripts/introspect.py" introspect --sanitize --write-pip "$tmp/pip.txt" \
  --write-bindep "$tmp/bindep.txt" "$tmp/installed" >"$tmp/introspect.log" 2>&1 ||
  { cat "$tmp/introspect.log"; fail "introspect.py"; }
mapfile -t reqs < <(grep -Eo '^[A-Za-z0-9_.-]+' requirements.txt)
for req in "${reqs[@]}"; do
  grep -qi "^$req" "$tmp/pip.txt" || { cat "$tmp/pip.txt"; fail "introspection lost $req of requirements.txt"; }
done
grep -Ev '^\s*(#|$)' bindep.txt | while read -r line; do
  grep -qF "$line" "$tmp/bindep.txt" || { cat "$tmp/bindep.txt"; fail "introspection lost bindep line: $line"; }
done
grep -q "# from collection blockstore.storage" "$tmp/bindep.txt" || fail "bindep lines not attributed to blockstore.storage"

step "what assemble installs (bindep, default profile; here for Debian, the image decides its own platform)"
bindep -l newline -f "$tmp/bindep.txt" >"$tmp/run.txt" || true
for pkg in python3-rbd python3-rados; do
  grep -qx "$pkg" "$tmp/run.txt" || fail "$pkg would not be installed into the image"
done
for pkg in tgt postgresql qemu-system-common; do
  ! grep -qx "$pkg" "$tmp/run.txt" || fail "$pkg (target host, backend host or tests only) would be installed into the image"
done
echo "ee_context: ok (pip: $(grep -c . "$tmp/pip.txt") requirements; image packages: $(tr '\n' ' ' <"$tmp/run.txt"))"
