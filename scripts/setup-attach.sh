#!/usr/bin/env bash
# Set-up for attachments (storage_attachment, storage_host_info) and their tests; run by
# scripts/setup.sh with BLOCKSTORE_VENV; idempotent and quick when already done.
#
#   tgt                  the userspace iSCSI target (tgtd, tgtadm) of the file driver's target: iscsi
#   qemu-system-common   qemu-storage-daemon: qcow2/iscsi/rbd images exported as files over FUSE
#   qemu-block-extra     qemu's iscsi (libiscsi) and rbd block drivers
#   fuse3                FUSE mounts for those exports
#   libiscsi-bin         iscsi-ls/iscsi-inq: the tests check that CHAP is enforced
#   open-iscsi           iscsiadm and /etc/iscsi/initiatorname.iscsi, read by os-brick's connector properties
#   qemu-utils e2fsprogs util-linux   qemu-img, mkfs.ext4, losetup
# Python: os-brick (connector properties, kernel attach) in the venv, from requirements.txt.
# Nothing is started here: the tests start (and stop) their own tgtd.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}

APT_PACKAGES=(tgt qemu-system-common qemu-block-extra fuse3 libiscsi-bin open-iscsi qemu-utils e2fsprogs util-linux)
apt_ensure "${APT_PACKAGES[@]}"

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import os_brick' 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/controller.txt "$(grep -E '^os-brick' requirements.txt)"
fi
for tool in tgtd tgtadm qemu-storage-daemon iscsi-ls losetup; do
  command -v "$tool" >/dev/null || { echo "setup-attach: $tool is missing after install" >&2; exit 1; }
done
[ -e /dev/fuse ] || echo "setup-attach: warning: /dev/fuse is missing; the userspace attach path will fail" >&2
echo "attach tools ready: $(tgtd -V 2>&1 | head -1 || true), $(qemu-storage-daemon --version | head -1)"
