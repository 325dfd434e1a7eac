#!/usr/bin/env bash
# A lab of Debian guest VMs (QEMU) running Debian's own kernel, for the kernel paths this machine's kernel lacks
# (iSCSI, NVMe-oF, device-mapper, LIO): gstor (a storage guest, with an empty 8 GiB data disk
# /dev/disk/by-id/virtio-data1) and gapp (a consumer), joined by two links.
#
#   bash tests/utils/guest_lab.sh up              boot the guests from throwaway overlays of the image
#                                                 (tests/utils/guest_image.sh), wait until each answers ssh and
#                                                 has finished booting, write the inventory
#   bash tests/utils/guest_lab.sh down            power the guests off (then kill what is left), remove the overlays
#   bash tests/utils/guest_lab.sh wipe            down, then delete the lab's directory
#   bash tests/utils/guest_lab.sh inventory       print the inventory file's path (YAML)
#   bash tests/utils/guest_lab.sh ssh HOST CMD... run a command in a guest as root
#   bash tests/utils/guest_lab.sh link HOST N down|up   take link N (1 or 2) of a guest down or up again
#   bash tests/utils/guest_lab.sh holdings        what the lab runs or holds now: nothing once it is down
#
# Settings (environment): BLOCKSTORE_GUEST_LAB_DIR (default /tmp/blockstore-guest-lab), BLOCKSTORE_GUEST_NET
# (the first three octets of a /24 no interface or route of this machine holds; default 203.0.113, TEST-NET-3),
# BLOCKSTORE_GUEST_CONSUMERS (default "gapp"), BLOCKSTORE_GUEST_MEM (MiB, default 1536), BLOCKSTORE_GUEST_CPUS
# (default 2), BLOCKSTORE_GUEST_ACCEL (tcg or kvm; default kvm only when kvm_intel or kvm_amd is loaded),
# BLOCKSTORE_GUEST_BOOT_TIMEOUT (s, default 900), BLOCKSTORE_GUEST_CACHE (the image's, as guest_image.sh).
#
# Network: every guest has a user-mode NIC (QEMU's slirp, restrict=on: it reaches nothing) whose port 22 is
# forwarded to 127.0.0.1:PORT of this machine, for the controller's ssh. Links 1 and 2 join gstor to each
# consumer point to point (QEMU stream netdevs over unix sockets in the lab's folder: no tap, bridge or
# namespace on this machine); on link N of the k-th consumer, gstor is NET.(64N+4k-3)/30 and the consumer
# NET.(64N+4k-2)/30, so by default gstor is .65 and .129, gapp .66 and .130. `link` cuts a link at QEMU's NIC
# (the guest sees its carrier go). Run it under `flock /work/logs/guest.lock` on a shared machine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${BLOCKSTORE_GUEST_LAB_DIR:-/tmp/blockstore-guest-lab}
NET=${BLOCKSTORE_GUEST_NET:-203.0.113}
read -r -a CONSUMERS <<<"${BLOCKSTORE_GUEST_CONSUMERS:-gapp}"
HOSTS=(gstor "${CONSUMERS[@]}")
MEM=${BLOCKSTORE_GUEST_MEM:-1536}
CPUS=${BLOCKSTORE_GUEST_CPUS:-2}
BOOT_TIMEOUT=${BLOCKSTORE_GUEST_BOOT_TIMEOUT:-900}
INTERPRETER=/opt/blockstore/venv/bin/python

die() { echo "guest_lab: $*" >&2; exit 1; }

check_range() {
  local taken
  taken=$(ip -4 -o addr show | awk -v n="$NET." 'index($4, n) == 1 {print $2 " " $4}')
  [ -z "$taken" ] || die "$NET.0/24 is taken by an interface of this machine ($taken); set BLOCKSTORE_GUEST_NET to a free /24"
  taken=$(ip -4 route show | awk -v n="$NET." 'index($1, n) == 1 || index($3, n) == 1')
  [ -z "$taken" ] || die "$NET.0/24 is routed on this machine ($taken); set BLOCKSTORE_GUEST_NET to a free /24"
}

accel() {
  case "${BLOCKSTORE_GUEST_ACCEL:-}" in
    kvm) echo kvm ;;
    tcg) echo tcg ;;
    "") if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then echo kvm; else echo tcg; fi ;;
    *) die "BLOCKSTORE_GUEST_ACCEL must be tcg or kvm, not '$BLOCKSTORE_GUEST_ACCEL'" ;;
  esac
}

# Addresses: link N (1, 2) of consumer K (1-based), as seen from gstor (side 1) or the consumer (side 2).
link_address() { echo "$NET.$((64 * $1 + 4 * $2 - 4 + $3))"; }
mac() { printf '52:54:00:b5:%02x:%02x' "$1" "$2"; }  # mac GUEST_INDEX NIC_INDEX

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

qemu_pid() {  # the pid of HOST's qemu, only while that process is this lab's
  local pid
  pid=$(cat "$LAB/$1/qemu.pid" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$LAB/$1/" || return 1
  echo "$pid"
}

hmp() {  # hmp HOST COMMAND: one command to the guest's QEMU monitor
  python3 - "$LAB/$1/monitor.sock" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
s.recv(4096)  # the banner
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.3)
out = s.recv(65536).decode(errors="replace")
lines = [line for line in out.replace("\r", "").split("\n") if line and not line.startswith("(qemu)")]
print("\n".join(lines[1:]) if lines and sys.argv[2] in lines[0] else "\n".join(lines))
PY
}

ssh_to() {  # ssh_to HOST COMMAND...
  ssh -F "$LAB/ssh_config" "$@"
}

start_guest() {  # start_guest INDEX HOST
  local i=$1 host=$2 dir="$LAB/$2" port net nics=() k consumer n
  mkdir -p "$dir"
  qemu-img create -q -f qcow2 -b "$IMAGE/base.qcow2" -F qcow2 "$dir/root.qcow2"
  port=$(free_port)
  echo "$port" >"$dir/ssh.port"
  net="$(mac "$i" 0)=dhcp"
  # shellcheck disable=SC2054  # QEMU's options are comma-separated
  local args=(
    -name "$host" -uuid "$(cat /proc/sys/kernel/random/uuid)" -machine q35 -m "$MEM" -smp "$CPUS"
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img"
    # The root disk first: a disk declared later would become vda (kvm-guest notes).
    -drive "file=$dir/root.qcow2,if=none,id=root,format=qcow2,cache=unsafe" -device virtio-blk-pci,drive=root,serial=root
    -netdev "user,id=nic0,net=$NET.0/26,host=$NET.2,dns=$NET.3,dhcpstart=$NET.15,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22"
    -device "virtio-net-pci,netdev=nic0,mac=$(mac "$i" 0)"
    -device virtio-rng-pci -display none -serial "file:$dir/console.log"
    -monitor "unix:$dir/monitor.sock,server=on,wait=off" -no-reboot -daemonize -pidfile "$dir/qemu.pid"
  )
  # shellcheck disable=SC2054
  if [ "$(accel)" = kvm ]; then args+=(-accel kvm -cpu host); else args+=(-accel tcg,thread=multi -cpu max); fi
  if [ "$host" = gstor ]; then
    qemu-img create -q -f qcow2 "$dir/data1.qcow2" 8G
    # shellcheck disable=SC2054
    args+=(-drive "file=$dir/data1.qcow2,if=none,id=data1,format=qcow2,cache=unsafe" -device virtio-blk-pci,drive=data1,serial=data1)
    k=0
    for consumer in "${CONSUMERS[@]}"; do
      k=$((k + 1))
      for n in 1 2; do
        # gstor listens on each link's socket; the consumer, started after it, connects.
        args+=(-netdev "stream,id=link$n-$consumer,server=on,addr.type=unix,addr.path=$LAB/link$n-$consumer.sock"
               -device "virtio-net-pci,netdev=link$n-$consumer,mac=$(mac "$i" $((2 * k + n - 2)))")
        nics+=("$(mac "$i" $((2 * k + n - 2)))=$(link_address "$n" "$k" 1)/30")
      done
    done
  else
    k=$((i - 1))
    for n in 1 2; do
      args+=(-netdev "stream,id=link$n,server=off,addr.type=unix,addr.path=$LAB/link$n-$host.sock"
             -device "virtio-net-pci,netdev=link$n,mac=$(mac "$i" "$n")")
      nics+=("$(mac "$i" "$n")=$(link_address "$n" "$k" 2)/30")
    done
  fi
  for n in "${nics[@]}"; do net+=",$n"; done
  args+=(-append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.hostname=$host bslab.net=$net")
  qemu-system-x86_64 "${args[@]}" || die "qemu did not start $host (see above)"
}

write_files() {
  local host port i k n key
  key=$(cut -d' ' -f1,2 "$IMAGE/ssh_host_ed25519_key.pub")
  cp "$IMAGE/id_ed25519" "$LAB/id_ed25519"
  chmod 600 "$LAB/id_ed25519"
  : >"$LAB/known_hosts"
  : >"$LAB/ssh_config"
  for host in "${HOSTS[@]}"; do
    port=$(cat "$LAB/$host/ssh.port")
    echo "[127.0.0.1]:$port $key" >>"$LAB/known_hosts"
    printf 'Host %s\n  HostName 127.0.0.1\n  Port %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n' \
      "$host" "$port" "$LAB/id_ed25519" "$LAB/known_hosts" >>"$LAB/ssh_config"
  done
  {
    echo "# The guest lab (tests/utils/guest_lab.sh); made by 'up'."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: ssh"
    echo "    ansible_user: root"
    echo "    ansible_ssh_private_key_file: $LAB/id_ed25519"
    echo "    ansible_ssh_common_args: -o UserKnownHostsFile=$LAB/known_hosts -o StrictHostKeyChecking=yes"
    # One master connection per guest, in the lab's folder, so that down can close them all.
    echo "    ansible_ssh_args: -o ControlMaster=auto -o ControlPersist=120s -o ControlPath=$LAB/cp/%C"
    echo "    ansible_python_interpreter: $INTERPRETER"
    echo "    guest_lab_net: '$NET'"
    echo "  children:"
    echo "    guests:"
    echo "      children:"
    echo "        storage:"
    echo "          hosts:"
    echo "            gstor:"
    echo "              ansible_host: 127.0.0.1"
    echo "              ansible_port: $(cat "$LAB/gstor/ssh.port")"
    echo "              guest_data_disk: /dev/disk/by-id/virtio-data1"
    echo "              guest_link_addresses:"
    k=0
    for host in "${CONSUMERS[@]}"; do
      k=$((k + 1))
      for n in 1 2; do echo "                - $(link_address "$n" "$k" 1)"; done
    done
    echo "        consumers:"
    echo "          hosts:"
    k=0
    for host in "${CONSUMERS[@]}"; do
      k=$((k + 1))
      echo "            $host:"
      echo "              ansible_host: 127.0.0.1"
      echo "              ansible_port: $(cat "$LAB/$host/ssh.port")"
      echo "              guest_link_addresses:"
      for n in 1 2; do echo "                - $(link_address "$n" "$k" 2)"; done
      echo "              # gstor's address on each link to this guest: the two portals"
      echo "              guest_storage_portals:"
      for n in 1 2; do echo "                - $(link_address "$n" "$k" 1)"; done
    done
  } >"$LAB/inventory.yml"
}

wait_booted() {  # until every guest answers ssh and systemd has finished starting it
  local deadline=$((SECONDS + BOOT_TIMEOUT)) host state pending=("${HOSTS[@]}") left
  while [ ${#pending[@]} -gt 0 ]; do
    left=()
    for host in "${pending[@]}"; do
      qemu_pid "$host" >/dev/null || { tail -n 40 "$LAB/$host/console.log" >&2; die "the qemu of $host is gone (its console above)"; }
      state=$(timeout 60 ssh -F "$LAB/ssh_config" -o ConnectTimeout=5 "$host" systemctl is-system-running --wait 2>/dev/null) || true
      case "$state" in
        running) echo "guest_lab: $host booted ($((SECONDS - STARTED)) s)" ;;
        degraded)
          echo "guest_lab: $host booted ($((SECONDS - STARTED)) s), with failed units:" >&2
          ssh_to "$host" systemctl --failed --no-legend >&2 || true ;;
        *) left+=("$host") ;;
      esac
    done
    pending=(${left[@]+"${left[@]}"})
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for host in "${pending[@]}"; do echo "== $host console:" >&2; tail -n 30 "$LAB/$host/console.log" >&2; done
      return 1
    fi
    sleep 3
  done
}

up() {
  [ ! -e "$LAB/up" ] || die "the lab in $LAB is up already; take it down first (down or wipe)"
  command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64: run scripts/setup.sh (scripts/setup-guest.sh)"
  if [ ${#CONSUMERS[@]} -lt 1 ] || [ ${#CONSUMERS[@]} -gt 15 ]; then die "BLOCKSTORE_GUEST_CONSUMERS must name 1 to 15 guests"; fi
  check_range
  # QEMU's unix sockets (monitor, links) live below it: a socket path holds at most 107 bytes.
  [ ${#LAB} -le 80 ] || die "the lab's directory $LAB is too long for its sockets (at most 80 characters)"
  IMAGE=$(bash "$HERE/guest_image.sh" path) || exit 1
  rm -rf "$LAB"
  mkdir -p "$LAB/cp"
  chmod 700 "$LAB"
  touch "$LAB/up"
  STARTED=$SECONDS
  local i=0 host
  for host in "${HOSTS[@]}"; do
    i=$((i + 1))
    start_guest "$i" "$host" || { down >/dev/null; exit 1; }
  done
  write_files
  echo "guest_lab: started ${HOSTS[*]} ($(accel), ${CPUS} vCPU, ${MEM} MiB each); waiting for them to boot"
  if ! wait_booted; then
    down >/dev/null
    die "the guests did not finish booting in ${BOOT_TIMEOUT} s (BLOCKSTORE_GUEST_BOOT_TIMEOUT)"
  fi
  echo "guest_lab: up in $((SECONDS - STARTED)) s: ${HOSTS[*]}; inventory $LAB/inventory.yml"
}

down() {
  local host pid pids=() left sock
  # Ansible's master connections (ControlPersist) are the controller's processes: closed first.
  for sock in "$LAB"/cp/*; do
    if [ -S "$sock" ]; then ssh -o ControlPath="$sock" -O exit lab >/dev/null 2>&1 || true; fi
  done
  for host in "${HOSTS[@]}"; do
    pid=$(qemu_pid "$host") || continue
    pids+=("$pid")
    # poweroff returns before the guest is off; its qemu exits then (-no-reboot).
    timeout 15 ssh -F "$LAB/ssh_config" -o ConnectTimeout=3 "$host" systemctl poweroff --no-block >/dev/null 2>&1 || true
  done
  for _ in $(seq 60); do
    left=()
    for pid in ${pids[@]+"${pids[@]}"}; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.5
  done
  for host in "${HOSTS[@]}"; do
    pid=$(qemu_pid "$host") || continue
    echo "guest_lab: $host did not power off in 30 s; killing its qemu ($pid)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for host in "${HOSTS[@]}"; do
    rm -f "$LAB/$host/root.qcow2" "$LAB/$host/data1.qcow2" "$LAB/$host/monitor.sock" "$LAB/$host/qemu.pid"
  done
  rm -f "$LAB"/link*.sock "$LAB/up"
  echo "guest_lab: down"
}

holdings() {
  local host
  pgrep -a -f "$LAB/" | grep -E 'qemu-system|ControlPath' | sed 's/^/process /' || true
  for host in "${HOSTS[@]}"; do
    for f in root.qcow2 data1.qcow2 monitor.sock qemu.pid; do [ -e "$LAB/$host/$f" ] && echo "file $LAB/$host/$f"; done
  done
  compgen -G "$LAB/link*.sock" | sed 's/^/file /' || true
  [ -e "$LAB/up" ] && echo "file $LAB/up"
  return 0
}

link() {  # link HOST N down|up
  local host=${1:-} n=${2:-} state=${3:-} k=0 consumer ids=()
  [[ $n == [12] ]] || die "link: N must be 1 or 2, not '$n'"
  case "$state" in down) state=off ;; up) state=on ;; *) die "link: the state must be down or up, not '$state'" ;; esac
  if [ "$host" = gstor ]; then
    for consumer in "${CONSUMERS[@]}"; do ids+=("link$n-$consumer"); done
  else
    for consumer in "${CONSUMERS[@]}"; do k=$((k + 1)); [ "$consumer" = "$host" ] && ids+=("link$n"); done
    [ ${#ids[@]} -gt 0 ] || die "link: no guest '$host' (the guests: ${HOSTS[*]})"
  fi
  qemu_pid "$host" >/dev/null || die "link: $host is not running"
  for id in "${ids[@]}"; do
    out=$(hmp "$host" "set_link $id $state")
    [ -z "$out" ] || die "link: QEMU refused 'set_link $id $state' on $host: $out"
  done
  echo "guest_lab: $host link $n ${3}"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  wipe) down; rm -rf "$LAB"; echo "guest_lab: wiped" ;;
  inventory) echo "$LAB/inventory.yml" ;;
  ssh) [ $# -ge 3 ] || die "usage: ssh HOST COMMAND..."; shift; ssh_to "$@" ;;
  link) shift; link "$@" ;;
  holdings) holdings ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
