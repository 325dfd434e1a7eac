#!/usr/bin/env bash
# Set-up for the volume role, its molecule scenarios and the packaging tests; run by
# scripts/setup.sh with BLOCKSTORE_VENV; idempotent and quick when already done.
#
# The role uses community.general.filesystem and ansible.posix.mount (galaxy.yml dependencies).
# Ansible Galaxy is not reachable from these machines, PyPI is: the `ansible` community package
# on PyPI bundles those collections as installed Galaxy artifacts (MANIFEST.json + FILES.json).
# ansible ${ANSIBLE_BUNDLE} is the release built on ansible-core 2.21 (it requires ansible-core~=2.21.5).
# Its wheel is downloaded (no install, no dependencies), the few collections we need are
# packed back into ordinary collection tarballs in $BLOCKSTORE_COLLECTIONS_CACHE, and those are
# installed with `ansible-galaxy collection install --offline` into ~/.ansible/collections.
# The tarballs stay in the cache: the packaging test installs our tarball together with them
# into an empty path, offline.
#
#   apt: e2fsprogs xfsprogs util-linux (mkfs, blkid, findmnt for the role); the attach tools come
#        from setup-attach.sh
#   pip: molecule, ansible-builder, bindep (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
ANSIBLE_BUNDLE=14.5.0
# namespace.name of what the role needs, and what those need themselves.
COLLECTIONS=(community.general ansible.posix community.library_inventory_filtering_v1)
CACHE=${BLOCKSTORE_COLLECTIONS_CACHE:-$HOME/.cache/blockstore/collections}
DEST=${BLOCKSTORE_COLLECTIONS_DEST:-$HOME/.ansible/collections}

APT_PACKAGES=(e2fsprogs xfsprogs util-linux)
apt_ensure "${APT_PACKAGES[@]}"

for tool in molecule ansible-builder bindep; do
  [ -x "$VENV/bin/$tool" ] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/controller.txt \
    "$(grep -E "^$tool" requirements-dev.txt | sed "s/ *#.*//")"
done

mkdir -p "$CACHE"
have_all=1
for fqcn in "${COLLECTIONS[@]}"; do
  compgen -G "$CACHE/${fqcn/./-}-*.tar.gz" >/dev/null || have_all=""
done
if [ -z "$have_all" ]; then
  echo "collections from the ansible $ANSIBLE_BUNDLE wheel: ${COLLECTIONS[*]}"
  wheel_dir=$(mktemp -d)
  trap 'rm -rf "$wheel_dir"' EXIT
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$wheel_dir" "ansible==$ANSIBLE_BUNDLE"
  "$VENV/bin/python" - "$wheel_dir"/ansible-*.whl "$CACHE" "${COLLECTIONS[@]}" <<'PY'
"""Pack collections bundled in the ansible wheel back into collection tarballs.

Each bundled collection directory is an installed Galaxy artifact: MANIFEST.json, FILES.json
(sha256 of every file) and the files, minus what the ansible package leaves out (tests, CI
files). Every file it ships must carry the checksum Galaxy's FILES.json gives it (checked here);
FILES.json is then trimmed to those files (and MANIFEST.json's checksum of it updated), so that
ansible-galaxy verifies every file again when it installs the tarball.
"""
import hashlib, io, json, os, sys, tarfile, zipfile

wheel, cache, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def add(tar, name, data=None):
    member = tarfile.TarInfo(name)
    if data is None:
        member.type, member.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(member)
    else:
        member.size, member.mode = len(data), 0o644
        tar.addfile(member, io.BytesIO(data))


with zipfile.ZipFile(wheel) as zf:
    for fqcn in wanted:
        namespace, name = fqcn.split(".")
        prefix = f"ansible_collections/{namespace}/{name}/"
        manifest = json.loads(zf.read(prefix + "MANIFEST.json"))
        files = json.loads(zf.read(prefix + "FILES.json"))
        shipped = {n[len(prefix):] for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")}
        kept, dirs = [], set()
        for item in files["files"]:
            if item["ftype"] != "file" or item["name"] not in shipped:
                continue
            if sha256(zf.read(prefix + item["name"])) != item["chksum_sha256"]:
                sys.exit(f"{fqcn}: {item['name']} in the wheel differs from the collection's FILES.json")
            kept.append(item)
            parts = item["name"].split("/")[:-1]
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        unlisted = shipped - {i["name"] for i in kept} - {"MANIFEST.json", "FILES.json"}
        if unlisted:
            sys.exit(f"{fqcn}: the wheel has files its FILES.json does not list: {sorted(unlisted)[:5]}")
        dir_items = [{"name": d, "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1}
                     for d in sorted(dirs)]
        files["files"] = [i for i in files["files"] if i["name"] == "."] + dir_items + kept
        files_json = json.dumps(files, indent=4).encode()
        manifest["file_manifest_file"]["chksum_sha256"] = sha256(files_json)
        version = manifest["collection_info"]["version"]
        target = f"{cache}/{namespace}-{name}-{version}.tar.gz"
        with tarfile.open(target + ".tmp", "w:gz") as tar:
            add(tar, "MANIFEST.json", json.dumps(manifest, indent=4).encode())
            add(tar, "FILES.json", files_json)
            for d in sorted(dirs):
                add(tar, d)
            for item in kept:
                add(tar, item["name"], zf.read(prefix + item["name"]))
        os.replace(target + ".tmp", target)
        print(f"  {fqcn} {version}: {len(kept)} files -> {target}")
PY
fi

# Install them (offline: the tarballs resolve each other) unless the same versions are there.
tarballs=()
for fqcn in "${COLLECTIONS[@]}"; do
  tarball=$(printf '%s\n' "$CACHE/${fqcn/./-}"-*.tar.gz | sort -V | tail -1)
  version=${tarball##*-}; version=${version%.tar.gz}
  manifest="$DEST/ansible_collections/${fqcn/.//}/MANIFEST.json"
  if ! { [ -f "$manifest" ] && grep -q "\"version\": \"$version\"" "$manifest"; }; then
    tarballs+=("$tarball")
  fi
done
if [ ${#tarballs[@]} -gt 0 ]; then
  "$VENV/bin/ansible-galaxy" collection install --offline --force -p "$DEST" "${tarballs[@]}" >/dev/null
fi
"$VENV/bin/ansible-galaxy" collection list -p "$DEST" community.general 2>/dev/null | grep -q community.general || {
  echo "setup-role: community.general is missing from $DEST after install" >&2; exit 1; }
echo "role dependencies ready in $DEST: $(cd "$CACHE" && printf '%s ' ./*.tar.gz)"
