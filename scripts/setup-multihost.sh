#!/usr/bin/env bash
# Set-up for the multi-host lab (tests/utils/multihost_lab.sh) and the storage_multihost integration target;
# run by scripts/setup.sh; idempotent.
#
#   openssh-server   each lab host runs its own sshd (its own config, host key and pid), started and stopped by
#                    the lab; nothing is started here. On a machine whose package scripts start services, the
#                    package also starts the system's own sshd: the lab does not use or need it.
#   openssh-client   the controller's ssh (Ansible's ssh connection) and ssh-keygen for the lab's keys
#   iproute2 util-linux   ip netns, veth and bridges; unshare and nsenter
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/apt.sh
. scripts/apt.sh

apt_ensure openssh-server openssh-client iproute2 util-linux
for tool in sshd ssh ssh-keygen ip unshare nsenter; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "setup-multihost: $tool is missing after install" >&2; exit 1; }
done
echo "multi-host lab tools ready: $(/usr/sbin/sshd -V 2>&1 | head -1)"
