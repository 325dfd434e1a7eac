# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loop devices (losetup): a file, or a FUSE export of an image, as a real block device.

`LoopConnector` attaches a local raw file; the userspace connector puts a loop device on
its daemon's export with the same helpers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import struct

from ..commands import run
from ..errors import DriverError, MissingDependency
from .base import Connector

_LOOP = re.compile(r"^/dev/loop(\d+)$")
# LOOP_GET_STATUS64 fills a struct loop_info64 (232 bytes) that starts with the backing file's device and inode.
LOOP_GET_STATUS64 = 0x4C05
_LOOP_INFO64_SIZE = 232


def _losetup(*args: str) -> str:
    path = shutil.which("losetup") or ("/usr/sbin/losetup" if os.path.exists("/usr/sbin/losetup") else None)
    if not path:
        raise MissingDependency("attach: losetup is missing on this host (package util-linux)", "losetup")
    proc = run([path, *args])
    if proc.returncode:
        raise DriverError(f"attach: losetup {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def _sys_dir(device: str) -> str | None:
    match = _LOOP.match(device or "")
    return f"/sys/block/loop{match.group(1)}" if match else None


def backing_file(device: str) -> str | None:
    """The file a loop device is bound to, or None when it is free or no loop device."""
    sys_dir = _sys_dir(device)
    if sys_dir is None:
        return None
    try:
        with open(os.path.join(sys_dir, "loop", "backing_file"), encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def bound_to(device: str, path: str) -> bool:
    backing = backing_file(device)
    return backing is not None and os.path.normpath(backing.replace(" (deleted)", "")) == os.path.normpath(path)


def backing_identity(device: str) -> tuple[int, int, int] | None:
    """(major, minor, inode) of the file a loop device is bound to, as the kernel keeps it; None when it cannot
    be read (not root, not a loop device, free)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = bytearray(_LOOP_INFO64_SIZE)
        fcntl.ioctl(fd, LOOP_GET_STATUS64, info)
    except OSError:
        return None
    finally:
        os.close(fd)
    dev, inode = struct.unpack_from("<QQ", info)
    # The kernel's own dev_t encoding (huge_encode_dev), not glibc's.
    return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00), inode


def bound_here(device: str, path: str) -> bool:
    """Whether `device`'s backing file is the file at `path` as this host's mount namespace sees it.

    /sys shows every loop device of the kernel with its backing path, and hosts that share a kernel
    (containers, the multi-host lab's namespaces) each have their own /run: another host's device
    bound to "/run/blockstore/<id>/export" is not this host's. A path that is not here, or another file,
    is not this host's; one that cannot be checked (not root, a dead FUSE export) is, as before."""
    identity = backing_identity(device)
    if identity is None:
        return True
    try:
        found = os.stat(path)
    except OSError as exc:
        return exc.errno != errno.ENOENT
    return (os.major(found.st_dev), os.minor(found.st_dev), found.st_ino) == identity


def bound_devices() -> dict[str, str]:
    """{/dev/loopN: backing file} of every loop device bound to a file on this host; a file
    removed since keeps its path with " (deleted)" after it, as the kernel shows it."""
    found = {}
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return found
    for name in names:
        backing = backing_file(f"/dev/{name}") if name.startswith("loop") else None
        if backing:
            found[f"/dev/{name}"] = backing
    return found


def attach(path: str, read_only: bool) -> str:
    args = ["--find", "--show"] + (["--read-only"] if read_only else []) + [path]
    device = _losetup(*args)
    if not _LOOP.match(device):
        raise DriverError(f"attach: losetup gave no loop device for {path} ({device!r})")
    return device


def detach(device: str, path: str) -> None:
    """Free the loop device if it is still bound to `path`; anything else is left alone."""
    if bound_to(device, path):
        _losetup("--detach", device)


def release(device: str) -> None:
    """Free a loop device already found bound to the file it was made for (that file may be gone since)."""
    _losetup("--detach", device)


def refresh(device: str) -> None:
    """Make the loop device take the current size of its file."""
    _losetup("--set-capacity", device)


def size(device: str) -> int:
    sys_dir = _sys_dir(device)
    with open(os.path.join(sys_dir, "size"), encoding="ascii") as handle:
        return int(handle.read()) * 512


class LoopConnector(Connector):
    """A local raw file as a loop device."""

    method = "loop"

    def connect_volume(self, connection_info: dict, directory: str, read_only: bool) -> dict:
        path = (connection_info.get("data") or {})["device_path"]
        return {"path": attach(path, read_only), "type": "block", "method": self.method, "backing_file": path}

    def disconnect_volume(self, device: dict, connection_info: dict) -> None:
        if device.get("path"):
            detach(device["path"], device.get("backing_file", ""))

    def extend_volume(self, device: dict, connection_info: dict, size_bytes: int) -> None:
        refresh(device["path"])

    def check_valid_device(self, device: dict) -> bool:
        return bound_to(device["path"], device.get("backing_file", ""))

    def size(self, device: dict) -> int | None:
        return size(device["path"])
