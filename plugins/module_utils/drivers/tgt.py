# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The userspace iSCSI target tgt, driven with tgtadm.

One target per connection (the file driver names it, drivers/file/export.py), LUN 1
backed by the volume's file, its ACL the connection's initiator name alone and its
one CHAP account the connection's (`bs<connection id hex>`). tgt's accounts belong
to targets, not initiators: a target shared by several hosts lets each log in with
any bound account. Several targets on one file share its data (tgt's rdwr backing
store reads and writes the file itself; no cache of its own). Older versions made
one shared target per volume: `revoke` still removes one connection from such a one.
Targets are found by name, never by a remembered tid (tgtd forgets tids when it
restarts). Picking a free tid and creating the target happen under an flock, so
parallel forks never collide.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import socket
import struct
import time
from typing import Iterator

from ..commands import CompletedProcess, run
from ..errors import DriverError, MissingDependency

LUN = 1
CONNECT_RETRIES = 6
# tgtd's management socket, as tgtadm finds it (TGT_IPC_SOCKET overrides the base, as for tgtadm).
SOCKET_BASE = "/var/run/tgtd/socket"
# The "account new" request as tgtadm of these tgt versions sends it (read off tgtd's socket): a 120-byte
# header (mode 7 = account, op 0 = new, lld, total length, tid -1, sid 0, lun all ones, six zero words)
# and "user=U,password=P" with its NUL. Sent from here, the password is on no command line (`ps` and
# /proc/PID/cmdline show every local user a tgtadm process's arguments). Other versions: tgtadm.
ACCOUNT_REQUEST = struct.Struct("<II64sIiQQ6I")
WIRE_VERSIONS = ("1.0.85",)
MODE_ACCOUNT, OP_NEW = 7, 0
LOCK_DIR = "/run/blockstore"
_TARGET = re.compile(r"^Target (\d+): (\S+)$")


class TgtdUnreachable(DriverError):
    """No tgtd answers on the control port here: on this host, no target exists."""


class Tgt:
    def __init__(self, control_port: int) -> None:
        self.control_port = control_port
        self._wire: bool | None = None  # _speaks_wire, asked once

    def _tgtadm(self, *args: str, check: bool = True) -> CompletedProcess:
        path = shutil.which("tgtadm") or ("/usr/sbin/tgtadm" if os.path.exists("/usr/sbin/tgtadm") else None)
        if not path:
            raise MissingDependency("backend.target: iscsi needs tgt (tgtd and tgtadm) on the backend host "
                                    "(Debian/Ubuntu package tgt, RHEL scsi-target-utils)", "tgt")
        command = [path, "-C", str(self.control_port), "--lld", "iscsi", *args]
        for attempt in range(CONNECT_RETRIES):
            proc = run(command)
            # tgtd now and then refuses a management connection (ENOTCONN, seen right after
            # it started and under load); the request was not received, so it is safe to resend.
            if proc.returncode != errno.ENOTCONN or attempt == CONNECT_RETRIES - 1:
                break
            time.sleep(0.2 * (attempt + 1))
        if check and proc.returncode:
            reason = (proc.stderr or proc.stdout).strip()
            shown = [a for a in args if a != "--password"]
            if "tgt daemon" in reason or "not connected" in reason:
                raise TgtdUnreachable(f"file driver: tgtadm {' '.join(shown[:4])} failed: {reason}"
                                      f"{self._unreachable_hint()}")
            raise DriverError(f"file driver: tgtadm {' '.join(shown[:4])} failed: {reason}")
        return proc

    def _unreachable_hint(self) -> str:
        # The export runs where the task runs: on a consumer host there is no tgtd to reach.
        return (f" (is tgtd running on this host ({socket.gethostname()}) with control port "
                f"{self.control_port}? The export is made where the task runs: name the host that serves "
                "the backend as the backend's host (backend.host), or run the task there (delegate_to), "
                "or start tgtd here with "
                f"'tgtd -C {self.control_port} --iscsi portal=IP:PORT')")

    def _speaks_wire(self) -> bool:
        """Whether this host's tgt is a version whose account request format is known (WIRE_VERSIONS)."""
        if self._wire is None:
            proc = self._tgtadm("--version", check=False)
            self._wire = proc.returncode == 0 and proc.stdout.strip() in WIRE_VERSIONS
        return self._wire

    def new_account(self, user: str, password: str) -> None:
        """Create a CHAP account, its password never on a command line where tgtd's protocol is known."""
        if not self._speaks_wire():
            self._tgtadm("--mode", "account", "--op", "new", "--user", user, "--password", password)
            return
        params = f"user={user},password={password}".encode() + b"\0"
        request = ACCOUNT_REQUEST.pack(MODE_ACCOUNT, OP_NEW, b"iscsi", ACCOUNT_REQUEST.size + len(params), -1, 0,
                                       2**64 - 1, 0, 0, 0, 0, 0, 0) + params
        path = f"{os.environ.get('TGT_IPC_SOCKET', SOCKET_BASE)}.{self.control_port}"
        for attempt in range(CONNECT_RETRIES):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
                    channel.settimeout(30)
                    channel.connect(path)
                    channel.sendall(request)
                    reply = channel.recv(8, socket.MSG_WAITALL)
                break
            except OSError as exc:
                # Refused or not connected: tgtd did not take the request (see _tgtadm), so it is resent.
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN) \
                        or attempt == CONNECT_RETRIES - 1:
                    raise DriverError(f"file driver: tgtd account new failed: can't reach the tgt daemon at {path}: "
                                      f"{exc.strerror or exc}{self._unreachable_hint()}") from None
                time.sleep(0.2 * (attempt + 1))
        if len(reply) != 8:
            raise DriverError("file driver: tgtd account new failed: tgtd closed the socket without an answer")
        error = struct.unpack("<I", reply[:4])[0]
        if error:
            raise DriverError(f"file driver: tgtd account new failed: tgtd refused it (tgtadm error {error})")

    def check(self) -> None:
        self._tgtadm("--mode", "target", "--op", "show")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(LOCK_DIR, f"tgt-{self.control_port}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # reading ------------------------------------------------------------
    def targets(self) -> dict[str, dict]:
        """{iqn: {"tid", "acl": [...], "accounts": [...], "backing": [...]}} from `target show`."""
        text = self._tgtadm("--mode", "target", "--op", "show").stdout
        found: dict[str, dict] = {}
        current, section = None, None
        for raw in text.splitlines():
            line = raw.strip()
            match = _TARGET.match(raw)
            if match:
                current = {"tid": int(match.group(1)), "acl": [], "accounts": [], "backing": []}
                found[match.group(2)] = current
                section = None
            elif current is None:
                continue
            elif line in ("Account information:", "ACL information:"):
                section = "accounts" if line.startswith("Account") else "acl"
            elif line.startswith("Backing store path:"):
                path = line.split(":", 1)[1].strip()
                if path and path != "None":
                    current["backing"].append(path)
            elif section and raw.startswith("        ") and line:
                current[section].append(line.replace(" (outgoing)", ""))
            elif not raw.startswith("        "):
                section = None
        return found

    def accounts(self) -> list[str]:
        text = self._tgtadm("--mode", "account", "--op", "show").stdout
        return [line.strip() for line in text.splitlines()[1:] if line.strip()]

    # changing -----------------------------------------------------------
    def ensure_target(self, iqn: str, backing: str) -> dict:
        """The target serving `backing` as LUN 1, created if missing."""
        with self._locked():
            targets = self.targets()
            if iqn not in targets:
                used = {t["tid"] for t in targets.values()}
                tid = next(i for i in range(1, len(used) + 2) if i not in used)
                self._tgtadm("--mode", "target", "--op", "new", "--tid", str(tid), "--targetname", iqn)
                targets[iqn] = {"tid": tid, "acl": [], "accounts": [], "backing": []}
            target = targets[iqn]
            if backing not in target["backing"]:
                try:
                    self._tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(target["tid"]),
                                 "--lun", str(LUN), "--backing-store", backing)
                except DriverError:
                    if not target["backing"]:
                        self._tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", str(target["tid"]),
                                     check=False)
                    raise
                target["backing"].append(backing)
            return target

    def allow(self, target: dict, initiator: str, user: str, password: str) -> None:
        if initiator not in target["acl"]:
            self._tgtadm("--mode", "target", "--op", "bind", "--tid", str(target["tid"]),
                         "--initiator-name", initiator)
        if user not in self.accounts():
            self.new_account(user, password)
        if user not in target["accounts"]:
            self._tgtadm("--mode", "account", "--op", "bind", "--tid", str(target["tid"]), "--user", user)

    def revoke(self, iqn: str, initiator: str | None, user: str | None) -> None:
        """Remove one connection's ACL entry and account from a target shared by several (older versions'
        one target per volume); the last one removes the target.

        tgtd 1.0.85 crashes when an account that a finished session used is unbound or
        deleted, or its initiator unbound, while the target lives (seen with qemu's
        initiator). Deleting the whole target first is safe: so the target is deleted
        and, if other connections remain, made again with their ACL entries and
        accounts (their initiators log in again by themselves).
        """
        with self._locked():
            target = self.targets().get(iqn)
            if target is not None:
                self._tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", str(target["tid"]))
            if user and user in self.accounts():
                self._tgtadm("--mode", "account", "--op", "delete", "--user", user)
            remaining = [a for a in (target or {}).get("accounts", []) if a != user]
            if not remaining:
                return
            tid = str(target["tid"])
            self._tgtadm("--mode", "target", "--op", "new", "--tid", tid, "--targetname", iqn)
            for backing in target["backing"]:
                self._tgtadm("--mode", "logicalunit", "--op", "new", "--tid", tid, "--lun", str(LUN),
                             "--backing-store", backing)
            for name in target["acl"]:
                if name != initiator:
                    self._tgtadm("--mode", "target", "--op", "bind", "--tid", tid, "--initiator-name", name)
            for account in remaining:
                self._tgtadm("--mode", "account", "--op", "bind", "--tid", tid, "--user", account)

    def remove(self, iqn: str, user: str | None) -> None:
        """Remove a connection's own target, then its account (deleted while no target has it bound: see revoke)."""
        with self._locked():
            target = self.targets().get(iqn)
            if target is not None:
                self._tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", str(target["tid"]))
            if user and user in self.accounts():
                self._tgtadm("--mode", "account", "--op", "delete", "--user", user)

    def refresh(self, backing: str) -> None:
        """tgt reads the size of a LUN's file once: re-add it in every target serving that file (one per host)."""
        with self._locked():
            for target in self.targets().values():
                if backing not in target["backing"]:
                    continue
                tid = str(target["tid"])
                self._tgtadm("--mode", "logicalunit", "--op", "delete", "--tid", tid, "--lun", str(LUN))
                self._tgtadm("--mode", "logicalunit", "--op", "new", "--tid", tid, "--lun", str(LUN),
                             "--backing-store", backing)
