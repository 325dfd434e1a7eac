#!/usr/bin/env bash
# The Debian image the guest lab (tests/utils/guest_lab.sh) boots, built from Debian packages and wheels from PyPI.
#
#   bash tests/utils/guest_image.sh build   reuse the image of these inputs from the cache, or build it (3-5 min)
#   bash tests/utils/guest_image.sh path    print the image's directory; fails when it is not built
#   bash tests/utils/guest_image.sh key     print the cache key: sha256 of the inputs (suite, packages, this
#                                           script, the wheels' names)
#
# Settings (environment): BLOCKSTORE_GUEST_CACHE (default /var/cache/blockstore/guest), BLOCKSTORE_GUEST_MIRROR
# (default http://deb.debian.org/debian), BLOCKSTORE_GUEST_COMPRESS=1 (a compressed qcow2: smaller, slower to
# build and to read). Needs root, debootstrap, e2fsprogs, qemu-utils and a pip (scripts/setup-guest.sh).
#
# The cache directory holds wheels-<sha256 of constraints/guest.txt>/ (what pip downloaded) and <key>/ with
# base.qcow2, vmlinuz, initrd.img, id_ed25519 (root's login key), ssh_host_ed25519_key.pub, dpkg-versions.txt and
# wheels.txt. A directory <key>/ exists only complete: it is built beside it and renamed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SELF="$HERE/guest_image.sh"
CACHE=${BLOCKSTORE_GUEST_CACHE:-/var/cache/blockstore/guest}
MIRROR=${BLOCKSTORE_GUEST_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CONSTRAINTS="$REPO/constraints/guest.txt"
# What a storage guest and a consumer guest need: the kernel (iSCSI, NVMe-oF, dm, LIO modules), systemd, sshd, the
# initiators and targets (open-iscsi, nvme-cli, multipath, LIO through targetcli/rtslib, tgt), LVM, Python for
# the modules, qemu-img for the drivers, ping for the path checks, python3-cryptography for secrets sealed with the
# task key (CHAP of a kernel export; the guests' venv sees system site packages), with python3-cffi-backend named:
# debootstrap does not resolve the virtual packages (python3-cffi-backend-api-*) python3-cryptography depends on;
# lsscsi for os-brick's iSCSI extend.
PACKAGES=(linux-image-amd64 systemd-sysv dbus openssh-server udev kmod iproute2 procps e2fsprogs xfsprogs python3
          python3-venv open-iscsi lvm2 thin-provisioning-tools targetcli-fb python3-rtslib-fb nvme-cli multipath-tools
          sg3-utils qemu-utils tgt iputils-ping python3-cryptography
          python3-cffi-backend lsscsi)
# Kernel module folders no storage guest loads: deleted to keep the image and the initrd small.
SLIM=(drivers/gpu drivers/media drivers/net/wireless drivers/net/ethernet drivers/staging drivers/bluetooth
      drivers/isdn drivers/iio drivers/comedi drivers/hid sound net/bluetooth net/wireless net/mac80211)

die() { echo "guest_image: $*" >&2; exit 1; }

wheel_dir() { echo "$CACHE/wheels-$(sha256sum "$CONSTRAINTS" | cut -c1-16)"; }

download_wheels() {  # the pinned wheels for the guest's Python 3.11, fetched once per constraints file
  local dir pip
  dir=$(wheel_dir)
  [ -f "$dir/.complete" ] && return 0
  pip=${BLOCKSTORE_VENV:+$BLOCKSTORE_VENV/bin/python}
  pip=${pip:-python3}
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  # The machine's own pip settings (find-links, constraints) are not the guest's: constraints/guest.txt is.
  env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    "$pip" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64 \
    --platform any -d "$dir.tmp" -r <(grep -v '^#' "$CONSTRAINTS")
  touch "$dir.tmp/.complete"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

key() {
  local dir
  dir=$(wheel_dir)
  [ -f "$dir/.complete" ] || die "no wheels in $dir: run 'bash scripts/setup-guest.sh' (or '$SELF build')"
  { echo "$SUITE"; echo "${PACKAGES[*]}"; echo "${SLIM[*]}"; cat "$SELF"; ls "$dir"; } | sha256sum | cut -c1-16
}

path() {
  local dir
  dir="$CACHE/$(key)"
  [ -f "$dir/base.qcow2" ] || die "no guest image in $dir: run 'bash scripts/setup-guest.sh' (or '$SELF build')"
  echo "$dir"
}

configure() {  # configure ROOT: the chroot's settings, before the image is made from it
  local root=$1
  # An empty root would write into this machine's own /etc.
  if [ -z "$root" ] || [ "$root" = / ] || [ ! -d "$root/etc" ]; then die "refusing to configure '$root'"; fi
  echo guest >"$root/etc/hostname"
  echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$root/etc/fstab"
  # Each guest's addresses come from its kernel command line (guest_lab.sh: bslab.net=MAC=ADDRESS/PREFIX|dhcp,...):
  # one image serves every guest. Written to /run before systemd-networkd reads its folders.
  cat >"$root/usr/local/sbin/blockstore-lab-net" <<'EOF'
#!/bin/sh
set -eu
mkdir -p /run/systemd/network
n=0
for word in $(cat /proc/cmdline); do
  case "$word" in bslab.net=*) ;; *) continue ;; esac
  for nic in $(echo "${word#bslab.net=}" | tr ',' ' '); do
    mac=${nic%%=*}; address=${nic#*=}; n=$((n + 1))
    {
      # A link taken down (guest_lab.sh link) keeps its address, as a server's would when its cable is pulled.
      printf '[Match]\nMACAddress=%s\n[Link]\nRequiredForOnline=no\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\nIgnoreCarrierLoss=yes\n' "$mac"
      if [ "$address" = dhcp ]; then printf 'DHCP=ipv4\n'; else printf 'Address=%s\n' "$address"; fi
    } >"/run/systemd/network/10-bslab-$n.network"
  done
done
EOF
  chmod 755 "$root/usr/local/sbin/blockstore-lab-net"
  cat >"$root/etc/systemd/system/blockstore-lab-net.service" <<'EOF'
[Unit]
Description=Network settings of this lab guest, from the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service network-pre.target
Wants=network-pre.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/blockstore-lab-net
[Install]
WantedBy=sysinit.target
EOF
  # Every guest boots from a fresh overlay of one image: each needs its own NVMe host NQN and ID (nvme-cli's
  # postinst baked one into the image) and its own iSCSI initiator name, there before anything reads them.
  cat >"$root/etc/systemd/system/blockstore-clone-ids.service" <<'EOF'
[Unit]
Description=NVMe host NQN and ID, iSCSI initiator name of this clone
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target iscsid.service iscsid.socket
ConditionPathExists=!/var/lib/blockstore/clone-ids
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /etc/nvme /var/lib/blockstore && nvme gen-hostnqn >/etc/nvme/hostnqn && sed "s/.*uuid://" /etc/nvme/hostnqn >/etc/nvme/hostid && echo "InitiatorName=$$(iscsi-iname)" >/etc/iscsi/initiatorname.iscsi && touch /var/lib/blockstore/clone-ids'
[Install]
WantedBy=sysinit.target
EOF
  echo "GenerateName=yes" >"$root/etc/iscsi/initiatorname.iscsi"
  mkdir -p "$root/etc/ssh/sshd_config.d" "$root/root/.ssh"
  printf 'UseDNS no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n' >"$root/etc/ssh/sshd_config.d/blockstore.conf"
  chmod 700 "$root/root/.ssh"
  cp "$2/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
  # One host key, made at build time: the lab's known_hosts names it.
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C guest -f "$root/etc/ssh/ssh_host_ed25519_key" </dev/null
  cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$2/"
  chroot "$root" systemctl enable -q systemd-networkd blockstore-lab-net blockstore-clone-ids
  chroot "$root" systemctl mask -q systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer
  # tgtd would hold port 3260 that LIO serves; the lvm tests start it when they export with tgt.
  local unit
  for unit in tgt nvmf-autoconnect cron logrotate.timer systemd-pstore; do
    chroot "$root" systemctl disable -q "$unit" 2>/dev/null || true
  done
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
}

build() {
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
  for tool in debootstrap mkfs.ext4 qemu-img ssh-keygen; do
    command -v "$tool" >/dev/null || die "no $tool: run 'bash scripts/setup-guest.sh'"
  done
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  flock 9  # one build at a time; a second waits and then finds the image
  download_wheels
  local k dir work root started=$SECONDS kernel
  k=$(key)
  dir="$CACHE/$k"
  if [ -f "$dir/base.qcow2" ]; then
    echo "guest image: cache hit $dir"
    return 0
  fi
  echo "guest image: building $dir (debootstrap $SUITE, $MIRROR)"
  work="$CACHE/$k.build.$$"
  root="$work/root"
  rm -rf "$work"
  mkdir -p "$root"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$CACHE/debs"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" --cache-dir="$CACHE/debs" \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  echo "guest image: debootstrap took $((SECONDS - started)) s"
  ssh-keygen -q -t ed25519 -N '' -C blockstore-guest-lab -f "$work/id_ed25519" </dev/null
  configure "$root" "$work"
  # The venv modules run with: Debian's python3 and its packages (rtslib-fb) plus the pinned wheels.
  mkdir -p "$root/tmp/wheels"
  cp "$(wheel_dir)"/*.whl "$root/tmp/wheels/"
  grep -v '^#' "$CONSTRAINTS" >"$root/tmp/wheels/requirements.txt"
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root python3 -m venv --system-site-packages /opt/blockstore/venv
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /opt/blockstore/venv/bin/pip install -q \
    --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt
  chroot "$root" /opt/blockstore/venv/bin/python -c 'import os_brick, rtslib_fb' || die "the guest venv cannot import os_brick and rtslib_fb"
  rm -rf "$root/tmp/wheels"
  local d
  for d in "${SLIM[@]}"; do rm -rf "$root"/lib/modules/*/kernel/"$d"; done
  kernel=$(basename "$(ls -d "$root"/lib/modules/*)")
  chroot "$root" depmod "$kernel"
  chroot "$root" update-initramfs -u -k "$kernel" >/dev/null
  cp "$root/boot/vmlinuz-$kernel" "$work/vmlinuz"
  cp "$root/boot/initrd.img-$kernel" "$work/initrd.img"
  # shellcheck disable=SC2016  # dpkg-query's format, not the shell's
  chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$work/dpkg-versions.txt"
  ls "$(wheel_dir)" >"$work/wheels.txt"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  mkfs.ext4 -q -L root -d "$root" "$work/root.raw" 4G
  local compress=()
  [ "${BLOCKSTORE_GUEST_COMPRESS:-}" = 1 ] && compress=(-c)
  qemu-img convert "${compress[@]}" -O qcow2 "$work/root.raw" "$work/base.qcow2"
  rm -rf "$root" "$work/root.raw"
  chmod 600 "$work/id_ed25519"
  cp "$work/dpkg-versions.txt" "$CACHE/dpkg-versions.txt"
  mv "$work" "$dir"
  trap - EXIT
  echo "guest image: built $dir in $((SECONDS - started)) s ($(du -sh "$dir/base.qcow2" | cut -f1))"
}

case "${1:-}" in
  build) build ;;
  path) path ;;
  key) key ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
