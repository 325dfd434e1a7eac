# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu-storage-daemon: any image qemu can open (qcow2, iscsi://, rbd) as a plain file.

One daemon per attachment, in its own directory (`<run dir>/<volume id>/`):
`export` is the FUSE mount point (a file showing the image's raw bytes), `qmp`
the monitor socket, `pid` the pid file, `key` a 0600 secret file that exists
only while the daemon starts (secrets never go on a command line), `watchdog`
the pid file of its dead-export watchdog (watchdog.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time

from ..commands import run
from ..errors import DriverError, MissingDependency
from . import watchdog

NODE = "disk"
# With QoS limits the export reads and writes through a throttle filter node over NODE, in this group.
THROTTLED_NODE = "throttled"
THROTTLE_GROUP = "qos0"
# Cinder's front-end QoS keys (volume_types.QOS_KEYS) -> QEMU's throttle limits.
THROTTLE_LIMITS = {"total_iops_sec": "iops-total", "read_iops_sec": "iops-read", "write_iops_sec": "iops-write",
                   "total_bytes_sec": "bps-total", "read_bytes_sec": "bps-read", "write_bytes_sec": "bps-write"}
SECRET_ID = "sec0"
STOP_TIMEOUT = 10.0
QMP_TIMEOUT = 30.0
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL


def binary() -> str:
    path = shutil.which("qemu-storage-daemon")
    if not path:
        raise MissingDependency("attach: the userspace path needs qemu-storage-daemon on this host (Debian/Ubuntu "
                                "package qemu-system-common, plus qemu-block-extra for iscsi and rbd; RHEL "
                                "qemu-storage-daemon) and FUSE (fuse3)", "qemu-storage-daemon")
    return path


def paths(directory: str) -> dict:
    return {"dir": directory, "export": os.path.join(directory, "export"), "qmp": os.path.join(directory, "qmp"),
            "pidfile": os.path.join(directory, "pid"), "key": os.path.join(directory, "key")}


def throttle_args(qos_specs: dict | None) -> tuple[list[str], str]:
    """The daemon's arguments that limit its export to `qos_specs` (a throttle group and a throttle filter
    node over NODE), and the node to export; none without limits."""
    limits = {THROTTLE_LIMITS[k]: int(v) for k, v in (qos_specs or {}).items() if k in THROTTLE_LIMITS and v}
    unknown = sorted(set(qos_specs or {}) - set(THROTTLE_LIMITS))
    if unknown:
        raise DriverError(f"attach: qemu-storage-daemon cannot enforce the QoS key(s) {', '.join(unknown)} of this "
                          f"connection; it enforces {', '.join(THROTTLE_LIMITS)}")
    if not limits:
        return [], NODE
    group = {"qom-type": "throttle-group", "id": THROTTLE_GROUP, "limits": limits}
    node = {"driver": "throttle", "throttle-group": THROTTLE_GROUP, "file": NODE, "node-name": THROTTLED_NODE}
    return ["--object", json.dumps(group, separators=(",", ":")),
            "--blockdev", json.dumps(node, separators=(",", ":"))], THROTTLED_NODE


def start(directory: str, blockdev: dict, writable: bool, secret: str | None = None,
          secret_format: str = "raw", qos_specs: dict | None = None) -> dict:
    """Start a daemon exporting `blockdev` at `<directory>/export`; returns its facts.

    `secret_format` base64: the secret is a base64 text that qemu must decode (a Ceph key).
    `qos_specs` (Cinder's front-end keys): the export is throttled to them.
    """
    where = paths(directory)
    if len(where["qmp"]) > MAX_SOCKET_PATH:
        raise DriverError(f"attach: run directory {directory} is too long for a unix socket path; "
                          "set BLOCKSTORE_RUN_DIR to a shorter directory")
    stop(where)  # whatever an interrupted run left in this directory
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(where["export"], "w"):
        pass
    command = [binary()]
    if secret is not None:
        fd = os.open(where["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        command += ["--object", f"secret,id={SECRET_ID},file={where['key']},format={secret_format}"]
    throttle, exported = throttle_args(qos_specs)
    command += [
        "--blockdev", json.dumps(dict(blockdev, **{"node-name": NODE}), separators=(",", ":")),
        *throttle,
        "--export", f"type=fuse,id=export0,node-name={exported},mountpoint={where['export']},"
                    f"writable={'on' if writable else 'off'}",
        "--chardev", f"socket,id=qmp0,path={where['qmp']},server=on,wait=off",
        "--monitor", "chardev=qmp0",
        "--pidfile", where["pidfile"],
        "--daemonize",
    ]
    try:
        # --daemonize returns once the export is up, or fails with the reason.
        proc = run(command, timeout=120)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where["key"])
    pid = _read_pid(where["pidfile"])
    if proc.returncode or pid is None:
        stop(where)
        reason = (proc.stderr or proc.stdout).strip().replace(secret or "\0", "********")
        raise DriverError(f"attach: qemu-storage-daemon could not open the volume: {reason}")
    # `node` is the exported one: a resize goes through the throttle filter to the image.
    return {"pid": pid, "dir": directory, "qmp": where["qmp"], "export": where["export"], "node": exported}


def _read_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def daemon_pid(directory: str) -> int | None:
    """The pid of a live daemon started in `directory`, or None."""
    pid = _read_pid(paths(directory)["pidfile"])
    return pid if pid is not None and running({"pid": pid, "dir": directory}) else None


def running(daemon: dict) -> bool:
    """Whether the daemon of this attachment is alive (the pid is ours, not reused)."""
    pid = daemon.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    return "qemu-storage-daemon" in cmdline and daemon.get("dir", "\0") in cmdline


def _mounted(path: str) -> bool:
    try:
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            return any(line.split()[1] == path for line in handle if len(line.split()) > 1)
    except OSError:
        return False


def stop(daemon: dict) -> None:
    """Stop the daemon and remove its directory; tolerant of any of it being gone already."""
    directory = daemon.get("dir")
    if not directory:
        return
    where = paths(directory)
    watchdog.stop(directory)  # first: it must not abort the export while the daemon is being stopped
    facts = dict(daemon)
    if "pid" not in facts:
        facts["pid"] = _read_pid(where["pidfile"])
    if running(facts):
        with contextlib.suppress(OSError, DriverError):
            qmp(where["qmp"], "quit", timeout=STOP_TIMEOUT)
        for sig in (signal.SIGTERM, signal.SIGKILL, None):
            if _wait_gone(facts) or sig is None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(facts["pid"], sig)
    if _mounted(where["export"]):
        # A killed daemon leaves its FUSE mount behind ("transport endpoint is not connected").
        run(["umount", "-l", where["export"]])
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(directory)


def _wait_gone(daemon: dict) -> bool:
    deadline = time.monotonic() + STOP_TIMEOUT / 2
    while running(daemon):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def qmp(socket_path: str, command: str, timeout: float = QMP_TIMEOUT, **arguments: object) -> object:
    """Run one QMP command on a daemon's monitor; returns its 'return' value."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(socket_path)
        stream = conn.makefile("rw", encoding="utf-8")
        json.loads(stream.readline())  # greeting
        answer = None
        for execute, args in (("qmp_capabilities", {}), (command, arguments)):
            stream.write(json.dumps({"execute": execute, "arguments": args}) + "\n")
            stream.flush()
            while True:
                line = stream.readline()
                if not line:
                    if execute == "quit":
                        return None
                    raise DriverError(f"attach: qemu-storage-daemon closed its monitor during {execute}")
                answer = json.loads(line)
                if "event" not in answer:
                    break
            if "error" in answer:
                raise DriverError(f"attach: qemu-storage-daemon refused {execute}: {answer['error'].get('desc')}")
        return answer.get("return")
    except (OSError, ValueError) as exc:
        if command == "quit" and isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            return None
        raise DriverError(f"attach: cannot talk to qemu-storage-daemon at {socket_path}: {exc}") from None
    finally:
        conn.close()


def throttle_limits(daemon: dict) -> dict:
    """The limits the daemon enforces now ({} without a throttle group), as its monitor reports them."""
    try:
        limits = qmp(daemon["qmp"], "qom-get", path=f"/objects/{THROTTLE_GROUP}", property="limits")
    except DriverError as exc:
        if "not found" in str(exc).lower():
            return {}
        raise
    return {k: v for k, v in (limits or {}).items() if k in THROTTLE_LIMITS.values() and v}


def resize(daemon: dict, size_bytes: int) -> None:
    """Grow the exported image (qcow2: the image itself; iscsi/rbd: take the target's new size)."""
    qmp(daemon["qmp"], "block_resize", **{"node-name": daemon.get("node", NODE), "size": size_bytes})
