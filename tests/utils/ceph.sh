#!/usr/bin/env bash
# A throwaway one-node Ceph cluster on 127.0.0.1 for the rbd driver's tests.
#
#   bash tests/utils/ceph.sh start    # start it, or reuse the one this script started
#   bash tests/utils/ceph.sh env      # shell exports: conf, keyring, user, pool
#   bash tests/utils/ceph.sh status   # exit 0 when it answers
#   bash tests/utils/ceph.sh stop     # kill its daemons by their pid files, remove its directory
#
# Test runs share the cluster: with BLOCKSTORE_CEPH_HOLDER=<pid of the run>, `start`
# records the run as a holder and `stop` stops the cluster only when no other living
# holder (and no plain `start` by hand) still uses it. Both hold a lock meanwhile.
#
# One monitor (msgr2 only, 127.0.0.1:3300), one OSD on memstore (data in RAM), one
# manager (capacity stats), cephx on. Pool `rbd` is initialised for rbd and user
# client.cinder has the caps Ceph documents for Cinder. Everything lives in
# $BLOCKSTORE_CEPH_DIR (default /tmp/blockstore-ceph); the monitor's port is fixed,
# so there is one such cluster per machine. BLOCKSTORE_CEPH_MGR=0 starts no manager
# (about 3 s and 300 MB less; capacity then reads 'unknown'). Needs scripts/setup-ceph.sh.
set -euo pipefail
DIR=${BLOCKSTORE_CEPH_DIR:-${TMPDIR:-/tmp}/blockstore-ceph}
CONF=$DIR/ceph.conf
POOL=rbd
USER_ID=cinder
MON_ADDR=127.0.0.1:3300
WITH_MGR=${BLOCKSTORE_CEPH_MGR:-1}
DAEMONS=(mon.a osd.0 mgr.x)

say() { echo "ceph.sh: $*" >&2; }
die() { say "$*"; exit 1; }
admin() { timeout 60 ceph --conf "$CONF" --name client.admin --connect-timeout 10 "$@"; }

pid_of() {  # pid of a daemon of this cluster that is alive, else nothing
  local file=$DIR/run/$1.pid pid
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  [ -d "/proc/$pid" ] && grep -q "^ceph-" "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

answers() {
  [ -f "$CONF" ] && pid_of mon.a >/dev/null && pid_of osd.0 >/dev/null &&
    admin osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { say "timed out waiting for $what; logs in $DIR/log"; return 1; }
    sleep 0.2
  done
}

write_conf() {
  cat >"$CONF" <<EOF
[global]
fsid = $(uuidgen)
mon host = v2:$MON_ADDR
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
# Every name finds its key beside this file, as /etc/ceph/\$cluster.\$name.keyring would.
keyring = $DIR/\$cluster.\$name.keyring
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$id
osd data = $DIR/osd/\$id
mgr data = $DIR/mgr/\$id

[mon]
keyring = $DIR/mon/\$id/keyring
# Snapshot create/remove wait for a new OSD map; batching map updates for the default
# 1 s made each take 0.35-1 s here, 20 ms with these.
paxos propose interval = 0.02
paxos min wait = 0.005

[osd]
osd objectstore = memstore
memstore device bytes = 8589934592
EOF
}

start() {
  if answers; then
    say "reusing the cluster in $DIR"
    return 0
  fi
  [ -d "$DIR" ] && stop_daemons && rm -rf "$DIR"
  for tool in ceph-mon ceph-osd ceph-mgr ceph ceph-authtool monmaptool rbd uuidgen; do
    command -v "$tool" >/dev/null || die "$tool is missing; run scripts/setup-ceph.sh"
  done
  if (exec 3<>"/dev/tcp/${MON_ADDR%:*}/${MON_ADDR##*:}") 2>/dev/null; then
    die "something else listens on $MON_ADDR; stop it first"
  fi
  mkdir -p "$DIR"/{run,log,mon/a,osd/0,mgr/x}
  write_conf

  # Keys: the monitor's, and client.admin's (imported into the monitor's keyring).
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/ceph.client.admin.keyring" >/dev/null
  monmaptool --create --fsid "$(awk '/^fsid/ {print $3}' "$CONF")" --addv a "[v2:$MON_ADDR]" \
    "$DIR/monmap" >/dev/null
  ceph-mon --conf "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" 2>/dev/null
  # 9>&-: the daemons must not inherit the start/stop lock.
  ceph-mon --conf "$CONF" -i a 9>&-
  wait_for 30 "the monitor" admin mon stat

  # One OSD on memstore, registered with a key of its own.
  local osd_uuid osd_key
  osd_uuid=$(uuidgen)
  osd_key=$(ceph-authtool --gen-print-key)
  echo "{\"cephx_secret\": \"$osd_key\"}" | admin osd new "$osd_uuid" -i - >/dev/null
  ceph-authtool --create-keyring "$DIR/ceph.osd.0.keyring" --name osd.0 --add-key "$osd_key" >/dev/null
  ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>/dev/null
  ceph-osd --conf "$CONF" -i 0 2>/dev/null 9>&-

  # The manager reports capacity (ceph df, pool stats) to the monitor.
  if [ "$WITH_MGR" != 0 ]; then
    admin auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
      -o "$DIR/ceph.mgr.x.keyring" >/dev/null
    ceph-mgr --conf "$CONF" -i x 2>/dev/null 9>&-
  fi

  wait_for 60 "the OSD to come up" bash -c "timeout 10 ceph --conf '$CONF' --name client.admin osd stat -f json | grep -q '\"num_up_osds\":1'"
  admin osd pool create "$POOL" 8 8 >/dev/null 2>&1
  admin osd pool application enable "$POOL" rbd >/dev/null 2>&1
  timeout 60 rbd --conf "$CONF" --name client.admin pool init "$POOL"
  admin auth get-or-create "client.$USER_ID" mon 'profile rbd' osd "profile rbd pool=$POOL" \
    mgr "profile rbd pool=$POOL" -o "$DIR/ceph.client.$USER_ID.keyring" >/dev/null
  chmod 600 "$DIR"/*.keyring
  [ "$WITH_MGR" = 0 ] || wait_for 60 "the manager" bash -c "timeout 10 ceph --conf '$CONF' --name client.admin mgr stat | grep -q '\"available\": true'"
  say "started in $DIR (mon $MON_ADDR, pool $POOL, user client.$USER_ID)"
}

stop_daemons() {
  local name pid pids=()
  for name in "${DAEMONS[@]}"; do
    pid=$(pid_of "$name") && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  # The data dies with the directory anyway: after 2 s a slow manager is killed.
  local alive
  for _ in $(seq 10); do
    alive=""
    for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && alive=1; done
    [ -n "$alive" ] || return 0
    sleep 0.2
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

HOLDERS=$DIR/holders
live_holders() {  # holders whose process still runs, one a line
  [ -f "$HOLDERS" ] || return 0
  local pid
  while read -r pid; do [ -n "$pid" ] && [ -d "/proc/$pid" ] && echo "$pid"; done <"$HOLDERS"
}

LOCK=$DIR.start-stop.lock
lock() {  # serialize start/stop of concurrent test runs (the lock lives beside the directory)
  exec 9>"$LOCK"
  flock -w 300 9 || die "timed out waiting for $LOCK"
}

case "${1:-}" in
  start)
    lock
    start
    if [ -n "${BLOCKSTORE_CEPH_HOLDER:-}" ]; then
      echo "$BLOCKSTORE_CEPH_HOLDER" >>"$HOLDERS"
    else
      touch "$DIR/started-by-hand"
    fi ;;
  stop)
    lock
    [ -d "$DIR" ] || exit 0
    if [ -n "${BLOCKSTORE_CEPH_HOLDER:-}" ]; then
      others=$(live_holders | grep -vx "$BLOCKSTORE_CEPH_HOLDER" || true)
      printf '%s\n' "$others" | grep . >"$HOLDERS.new" || true
      mv "$HOLDERS.new" "$HOLDERS"
      if [ -n "$others" ] || [ -e "$DIR/started-by-hand" ]; then
        say "left running: still used (${others:-started by hand})"
        exit 0
      fi
    fi
    stop_daemons
    rm -rf "$DIR" ;;
  status)
    if answers; then echo "running in $DIR"; else echo "not running"; exit 1; fi ;;
  env)
    [ -f "$CONF" ] || die "no cluster in $DIR; run: $0 start"
    cat <<EOF
export BLOCKSTORE_TEST_CEPH_CONF=$CONF
export BLOCKSTORE_TEST_CEPH_KEYRING=$DIR/ceph.client.$USER_ID.keyring
export BLOCKSTORE_TEST_CEPH_USER=$USER_ID
export BLOCKSTORE_TEST_CEPH_POOL=$POOL
export BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING=$DIR/ceph.client.admin.keyring
EOF
    ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
