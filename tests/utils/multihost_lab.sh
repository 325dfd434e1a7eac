#!/usr/bin/env bash
# A lab of real hosts on this machine, reached over SSH: stor1 (a storage host), app1 and app2 (consumers).
#
#   bash tests/utils/multihost_lab.sh up        make the hosts, start their sshd, write the inventory
#   bash tests/utils/multihost_lab.sh down      stop every daemon of the hosts by pid, detach their loop
#                                               devices, delete the namespaces, links and bridge
#   bash tests/utils/multihost_lab.sh wipe      down, then delete the lab's directory (the next up starts clean)
#   bash tests/utils/multihost_lab.sh inventory print the inventory file's path
#   bash tests/utils/multihost_lab.sh holdings  what the lab runs or holds now (processes, namespaces, links,
#                                               loop devices, mounts): nothing once it is down
#
# Settings (environment): BLOCKSTORE_LAB_DIR (default /tmp/blockstore-lab), BLOCKSTORE_LAB_NET (the first three
# octets of a /24 no interface or route of this machine holds; default 198.51.100, TEST-NET-2),
# BLOCKSTORE_LAB_HIDE (directories of the controller, colon-separated, hidden from the hosts by an empty tmpfs;
# /work always is). Needs root, iproute2, util-linux and openssh-server (scripts/setup-multihost.sh).
#
# Each host is a network namespace (no default route: lab traffic stays on the lab's links) plus its own
# mount, UTS and PID namespaces: its hostname, /etc/hosts, initiator IQN (/etc/iscsi/initiatorname.iscsi) and
# private /root, /run, /srv, /tmp and /var/tmp, bind mounts of folders under $BLOCKSTORE_LAB_DIR/hosts/HOST
# (so what a host wrote can be read from outside), and its own sshd (key auth for root with a key the lab
# makes). The controller, in the root namespace, is the bridge's address .1. One kernel serves every host,
# so loop devices are shared: down detaches those whose backing file is one of that host's files.
# Run it under `flock /work/logs/integration.lock` and always take the lab down again (docs/testing.md).
set -euo pipefail

LAB=${BLOCKSTORE_LAB_DIR:-/tmp/blockstore-lab}
NET=${BLOCKSTORE_LAB_NET:-198.51.100}
BRIDGE=bslab0
HOSTS=(stor1 app1 app2)
declare -A ADDRESS=([stor1]=11 [app1]=12 [app2]=13)
SELF=$(readlink -f "$0")

die() { echo "multihost_lab: $*" >&2; exit 1; }
ns() { echo "bslab-$1"; }

# --- inside a host (run by `up` through ip netns exec + unshare) -------------------------------------------
host_init() {  # host_init HOST: pid 1 of the host's PID namespace, in its own mount and UTS namespaces
  local host=$1 dir="$LAB/hosts/$1" target hidden
  hostname "$host"
  mount --bind "$dir/etc/hosts" /etc/hosts
  mount --bind "$dir/etc/hostname" /etc/hostname
  mkdir -p /etc/iscsi
  mount --bind "$dir/etc/initiatorname.iscsi" /etc/iscsi/initiatorname.iscsi
  mount --bind "$dir/ssh" /etc/ssh
  # /tmp last: the lab's folders are below it.
  for target in root run srv var/tmp tmp; do
    mount --bind "$dir/${target//\//-}" "/$target"
  done
  # What the controller keeps (venvs, the store, keys, the lab itself) is not there on a real host.
  IFS=: read -r -a hidden <<<"/work:$LAB:${BLOCKSTORE_LAB_HIDE:-}"
  for target in "${hidden[@]}"; do
    [ -n "$target" ] && [ -d "$target" ] && mount -t tmpfs -o size=1m,mode=0755 lab-hidden "$target"
  done
  mkdir -p /run/sshd
  ip link set lo up
  /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config &
  # pid 1 reaps what daemons leave behind (tgtd, qemu-storage-daemon double-fork) until down kills it.
  while :; do wait || true; sleep 1; done
}

# --- helpers ------------------------------------------------------------------------------------------------
init_pid() {  # the host's pid 1, as seen from here
  local launcher
  launcher=$(cat "$LAB/hosts/$1/launcher.pid" 2>/dev/null) || return 1
  pgrep -P "$launcher" | head -1
}

ns_pids() {  # every process in the host's PID namespace (init first)
  local init=$1 want
  want=$(stat -L -c %i "/proc/$init/ns/pid" 2>/dev/null) || return 0
  echo "$init"
  stat -L -c '%i %n' /proc/[0-9]*/ns/pid 2>/dev/null |
    awk -v want="$want" -v init="$init" '$1 == want {split($2, p, "/"); if (p[3] != init) print p[3]}'
  return 0
}

in_host() {  # in_host INIT_PID COMMAND...: run in the host's namespaces
  nsenter -t "$1" -m -u -n -p -- "${@:2}"
}

check_range() {
  local taken
  taken=$(ip -4 -o addr show | awk -v n="$NET." 'index($4, n) == 1 {print $2 " " $4}')
  [ -z "$taken" ] || die "$NET.0/24 is taken by an interface of this machine ($taken); set BLOCKSTORE_LAB_NET to a free /24"
  taken=$(ip -4 route show | awk -v n="$NET." '$1 != "default" && index($1, n) == 1')
  [ -z "$taken" ] || die "$NET.0/24 is routed on this machine ($taken); set BLOCKSTORE_LAB_NET to a free /24"
  # A default route through an address of the range would send lab traffic out of the uplink.
  taken=$(ip -4 route show default | awk -v n="$NET." 'index($3, n) == 1')
  [ -z "$taken" ] || die "the default route goes through $NET.0/24 ($taken); set BLOCKSTORE_LAB_NET to a free /24"
}

write_host_files() {  # write_host_files HOST
  local host=$1 dir="$LAB/hosts/$1" target
  mkdir -p "$dir/etc" "$dir/ssh"
  for target in root run srv tmp var-tmp; do mkdir -p "$dir/$target"; done
  chmod 700 "$dir/root"; chmod 1777 "$dir/tmp" "$dir/var-tmp"
  echo "$host" >"$dir/etc/hostname"
  {
    echo "127.0.0.1 localhost"
    echo "$NET.1 controller"
    for other in "${HOSTS[@]}"; do echo "$NET.${ADDRESS[$other]} $other"; done
  } >"$dir/etc/hosts"
  echo "InitiatorName=iqn.2005-03.org.blockstore.lab:$host" >"$dir/etc/initiatorname.iscsi"
  ssh-keygen -q -t ed25519 -N '' -C "$host" -f "$dir/ssh/ssh_host_ed25519_key" </dev/null
  cat >"$dir/ssh/sshd_config" <<EOF
ListenAddress $NET.${ADDRESS[$host]}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile /root/.ssh/authorized_keys
Subsystem sftp internal-sftp
EOF
  mkdir -p "$dir/root/.ssh"
  chmod 700 "$dir/root/.ssh"
  cp "$LAB/id_ed25519.pub" "$dir/root/.ssh/authorized_keys"
  echo "$NET.${ADDRESS[$host]} $(cut -d' ' -f1,2 "$dir/ssh/ssh_host_ed25519_key.pub")" >>"$LAB/known_hosts"
}

write_inventory() {
  local host
  {
    echo "[storage]"
    echo "stor1 ansible_host=$NET.${ADDRESS[stor1]}"
    echo "[consumers]"
    for host in app1 app2; do echo "$host ansible_host=$NET.${ADDRESS[$host]}"; done
    echo "[lab:children]"
    echo "storage"
    echo "consumers"
    echo "[lab:vars]"
    echo "ansible_connection=ssh"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$LAB/id_ed25519"
    echo "ansible_ssh_common_args=-o UserKnownHostsFile=$LAB/known_hosts -o StrictHostKeyChecking=yes"
    # One master connection per host, in the lab's folder, so that down can close them all.
    echo "ansible_ssh_args=-o ControlMaster=auto -o ControlPersist=120s -o ControlPath=$LAB/cp/%C"
    # Every host shares this machine's Debian Python (the venvs under /work are hidden from them).
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "lab_net=$NET"
    echo "lab_controller=$NET.1"
  } >"$LAB/inventory.ini"
}

# --- commands -----------------------------------------------------------------------------------------------
up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (namespaces, bridges, mounts)"
  [ -x /usr/sbin/sshd ] || die "no /usr/sbin/sshd: run scripts/setup.sh (scripts/setup-multihost.sh installs openssh-server)"
  [ ! -e "$LAB/up" ] || die "the lab in $LAB is up already; take it down first (down or wipe)"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "a link $BRIDGE exists already (a lab not taken down?); run wipe"
  check_range
  rm -rf "$LAB"
  mkdir -p "$LAB/cp"
  chmod 700 "$LAB"
  losetup -l -n -O NAME >"$LAB/loops.before" 2>/dev/null || true
  touch "$LAB/up"
  ssh-keygen -q -t ed25519 -N '' -C blockstore-lab-controller -f "$LAB/id_ed25519" </dev/null
  : >"$LAB/known_hosts"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local host name
  for host in "${HOSTS[@]}"; do
    name=$(ns "$host")
    write_host_files "$host"
    ip netns add "$name"
    ip link add "$name" type veth peer name eth0 netns "$name"
    ip link set "$name" master "$BRIDGE" up
    ip -n "$name" addr add "$NET.${ADDRESS[$host]}/24" dev eth0
    ip -n "$name" link set eth0 up
    # setsid: the host outlives the shell that made it; its launcher's pid finds its pid 1 again.
    BLOCKSTORE_LAB_DIR=$LAB setsid ip netns exec "$name" unshare --mount --uts --pid --fork --mount-proc \
      --propagation private bash "$SELF" _init "$host" </dev/null >"$LAB/hosts/$host/init.log" 2>&1 &
    echo $! >"$LAB/hosts/$host/launcher.pid"
  done
  write_inventory
  for host in "${HOSTS[@]}"; do
    for _ in $(seq 50); do
      ssh -o BatchMode=yes -o ConnectTimeout=2 -o UserKnownHostsFile="$LAB/known_hosts" -i "$LAB/id_ed25519" \
        "root@$NET.${ADDRESS[$host]}" hostname 2>/dev/null | grep -qx "$host" && continue 2
      sleep 0.2
    done
    cat "$LAB/hosts/$host/init.log" >&2
    down
    die "$host did not answer over SSH"
  done
  echo "lab up: ${HOSTS[*]} on $NET.0/24; inventory $LAB/inventory.ini"
}

stop_host() {  # stop_host HOST: every daemon by pid, its loop devices, then the namespaces
  local host=$1 init pid port loops=() name backing ino
  init=$(init_pid "$host") || init=""
  if [ -n "$init" ]; then
    # tgtd shuts down only without targets and ignores SIGTERM: its targets, then its system (as tgtd.sh does).
    for pid in $(ns_pids "$init"); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tgtd ] || continue
      port=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*-C \([0-9]*\).*/\1/p')
      port=${port:-0}
      for tid in $(in_host "$init" tgtadm -C "$port" --lld iscsi --mode target --op show 2>/dev/null |
                   sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
        in_host "$init" tgtadm -C "$port" --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1 || true
      done
      in_host "$init" tgtadm -C "$port" --mode system --op delete >/dev/null 2>&1 || true
    done
    # Loop devices whose backing file is one of this host's files (same inode, seen from inside the host).
    while read -r name backing ino; do
      [ -n "$backing" ] || continue
      if [ "$(timeout 5 nsenter -t "$init" -m stat -c %i "$backing" 2>/dev/null)" = "$ino" ] &&
         ! grep -qx "$name" "$LAB/loops.before"; then
        loops+=("$name")
      fi
    done < <(losetup -l -n -O NAME,BACK-FILE,BACK-INO 2>/dev/null)
    for name in "${loops[@]}"; do
      echo "multihost_lab: $host left $name attached; detaching it" >&2
      losetup -d "$name" 2>/dev/null || true
    done
    for pid in $(ns_pids "$init"); do [ "$pid" != "$init" ] && kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 20); do [ "$(ns_pids "$init" | wc -l)" -le 1 ] && break; sleep 0.1; done
    # pid 1 going takes every process left in the namespace with it (qemu-storage-daemon may ignore SIGTERM).
    kill -KILL "$init" 2>/dev/null || true
  fi
  pid=$(cat "$LAB/hosts/$host/launcher.pid" 2>/dev/null) || pid=""
  if [ -n "$pid" ]; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$LAB/hosts/$host/launcher.pid"
  ip netns del "$(ns "$host")" 2>/dev/null || true
  ip link del "$(ns "$host")" 2>/dev/null || true
}

down() {
  local host sock
  # Ansible's master connections (ControlPersist) are the controller's processes: closed first.
  for sock in "$LAB"/cp/*; do
    [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit lab >/dev/null 2>&1
  done
  for host in "${HOSTS[@]}"; do stop_host "$host"; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -f "$LAB/up"
  # Anything a run left mounted below the lab's folders from this namespace.
  grep -o " $LAB/[^ ]*" /proc/mounts 2>/dev/null | xargs -r -n1 umount -l 2>/dev/null || true
  echo "lab down"
}

holdings() {  # what the lab runs or holds; empty when it is down
  local host name
  for host in "${HOSTS[@]}"; do
    name=$(ns "$host")
    ip netns list 2>/dev/null | grep -qw "$name" && echo "namespace $name"
    ip link show "$name" >/dev/null 2>&1 && echo "link $name"
    [ -f "$LAB/hosts/$host/launcher.pid" ] && kill -0 "$(cat "$LAB/hosts/$host/launcher.pid")" 2>/dev/null &&
      echo "process $(cat "$LAB/hosts/$host/launcher.pid") (launcher of $host)"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "link $BRIDGE"
  pgrep -a -f "ControlPath=$LAB/cp" | sed 's/^/process /' || true
  pgrep -a -f "^/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config" | sed 's/^/process /' || true
  # Loop devices made since up (integration runs hold the machine-wide lock: nothing else makes any).
  [ -f "$LAB/loops.before" ] && losetup -l -n -O NAME,BACK-FILE 2>/dev/null |
    awk 'NR == FNR {before[$1] = 1; next} !($1 in before) {print "loop device " $0}' "$LAB/loops.before" -
  grep -F " $LAB/" /proc/mounts | sed 's/^/mount /' || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  wipe) down; rm -rf "$LAB"; echo "lab wiped" ;;
  inventory) echo "$LAB/inventory.ini" ;;
  holdings) holdings ;;
  _init) host_init "$2" ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
