#!/usr/bin/env bash
# Set-up for the guest VM lab (tests/utils/guest_lab.sh) and the storage_guest integration target; run by
# scripts/setup.sh; idempotent.
#
#   qemu-system-x86 qemu-utils   the guests (TCG, or KVM where the CPU has it) and their overlays
#   debootstrap e2fsprogs        the guest image, built without a loop device or a mount (mkfs.ext4 -d)
#   openssh-client               the controller's ssh to the guests
# Then the wheels of constraints/guest.txt, downloaded here for the guests' Python 3.11 (the guests reach no
# network), and the image itself: reused from ${BLOCKSTORE_GUEST_CACHE:-/var/cache/blockstore/guest} when its
# inputs have not changed, built otherwise (3-5 min; tests/utils/guest_image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/apt.sh
. scripts/apt.sh

apt_ensure qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client
for tool in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "setup-guest: $tool is missing after install" >&2; exit 1; }
done
bash tests/utils/guest_image.sh build
echo "guest lab ready: $(qemu-system-x86_64 --version | head -1); image $(bash tests/utils/guest_image.sh path)"
