# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `file` driver: volumes as files in one directory, raw or qcow2.

Files are named by id (`volume-<id>`, `snapshot-<id>`), never by a user's name.

raw   sparse files. A snapshot or clone is a full point-in-time copy: a reflink
      (FICLONE, constant time on XFS/btrfs) where the filesystem can, else a
      sparse copy. Snapshots never depend on anything: delete in any order.
qcow2 snapshots and clones are backing-file overlays (constant time whatever the
      size): the volume's current image is frozen by renaming it to
      `snapshot-<id>` (or `clone-base-<id>`), and a new empty overlay takes the
      volume's name. Deleting a snapshot merges its data into its only dependent
      image; a snapshot that several volumes were made from is kept hidden
      (`snapshot-<id>.deleted` marks it) until the last of them is deleted.

Every step is idempotent, so a re-run after a crash completes what was begun.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import string
import struct
from typing import Iterator

from ..commands import run
from ..config import Opt
from ..errors import Conflict, DriverError, InvalidParameter, MissingDependency
from ..objects import Connection, Snapshot, Volume
from ..units import GiB
from .base import Driver

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
QCOW2_MAGIC = b"QFI\xfb"
HIDDEN_MARK = ".deleted"
# A record in one of these statuses when its delete starts was being deleted by a run that
# crashed or failed: the driver then also collects what that run may have left.
RESUMED_DELETE = ("deleting", "error_deleting")


def _qcow2_header(path: str) -> tuple[str | None, int]:
    """(backing file name, virtual size in bytes) read straight from the header.

    Cheaper than `qemu-img info` by two orders of magnitude; used to find the
    images that depend on a frozen file.
    """
    with open(path, "rb") as handle:
        header = handle.read(32)
        if len(header) < 32 or header[:4] != QCOW2_MAGIC:
            return None, 0
        backing_offset, backing_size = struct.unpack(">QI", header[8:20])
        virtual_size = struct.unpack(">Q", header[24:32])[0]
        backing = None
        if backing_offset and backing_size:
            handle.seek(backing_offset)
            backing = handle.read(backing_size).decode("utf-8", "replace")
        return backing, virtual_size


class FileDriver(Driver):
    name = "file"
    options = (
        Opt("path", "path", required=True,
            help="Directory holding the volume files, on the host the module runs on. Created if missing."),
        Opt("format", default="raw", choices=("raw", "qcow2"),
            help="Image format of new volumes. raw: sparse files; qcow2: snapshots and clones as overlays."),
        Opt("reflink", default="auto", choices=("auto", "always", "never"),
            help="raw copies by reflink: auto uses it where the filesystem can, always fails where it cannot."),
        Opt("target", default="local", choices=("local", "iscsi"),
            help="How volumes are exported. local: the file path, attached on this host; iscsi: the userspace "
                 "target tgt on this host, with CHAP per connection (raw volumes only)."),
        Opt("iscsi_ip_address", default="127.0.0.1", help="Address of the tgt portal (target iscsi)."),
        Opt("iscsi_port", "int", default=3260, min=1, help="Port of the tgt portal (target iscsi)."),
        Opt("iscsi_target_prefix", default="iqn.2010-10.org.blockstore:",
            help="Prefix of target names; a volume's target is <prefix>volume-<id>."),
        Opt("tgt_control_port", "int", default=0, min=0,
            help="tgtd's control port (tgtd -C N; tgtadm talks to /var/run/tgtd/socket.N)."),
    )
    capabilities = {
        "formats": ["raw", "qcow2"],
        "thin_provisioning": True,
        "snapshot": {"raw": "reflink or sparse copy", "qcow2": "backing-file overlay (constant time)"},
        "clone": {"raw": "reflink or sparse copy", "qcow2": "backing-file overlay (constant time)"},
        "snapshot_delete_with_dependents": {
            "raw": "allowed: snapshots are independent copies",
            "qcow2": "allowed: merged into its only dependent image, or kept hidden until its last dependent "
                     "volume is deleted"},
        "multiattach": True,
        "connection_types": {"local": "file path (loop device, or qemu-storage-daemon FUSE for qcow2)",
                             "iscsi": "tgt target per volume, initiator ACL and CHAP per connection; raw only"},
    }

    def __init__(self, backend_name: str, conf: dict) -> None:
        super().__init__(backend_name, conf)
        if not os.path.isabs(conf["path"]):
            raise InvalidParameter(f"backend.path: {conf['path']!r} must be an absolute directory path",
                                   "backend.path")
        self.path = os.path.normpath(conf["path"])
        if conf["target"] == "iscsi" and conf["format"] == "qcow2":
            raise InvalidParameter("backend.target: iscsi exports raw files only (tgt serves a file's bytes as "
                                   "they are); use format raw, or target local for qcow2", "backend.target")

    # set-up -------------------------------------------------------------
    def check_setup(self) -> None:
        try:
            os.makedirs(self.path, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise DriverError(f"backend.path: cannot create directory {self.path}: {exc.strerror}",
                              "backend.path") from None
        if not os.path.isdir(self.path):
            raise DriverError(f"backend.path: {self.path} exists and is not a directory", "backend.path")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DriverError(f"backend.path: directory {self.path} is not writable", "backend.path")
        if self.conf["format"] == "qcow2":
            self._qemu_img_path()

    @staticmethod
    def _qemu_img_path() -> str:
        path = shutil.which("qemu-img")
        if not path:
            raise MissingDependency("backend.format: qcow2 needs qemu-img on the host the module runs on "
                                    "(Debian/Ubuntu package qemu-utils, RHEL package qemu-img)", "qemu-img")
        return path

    # paths --------------------------------------------------------------
    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def volume_path(self, volume: Volume) -> str:
        return self.local_path(volume.id)

    def local_path(self, volume_id: str) -> str:
        return self._file(f"volume-{volume_id}")

    def copy_freezes_image(self, volume: Volume) -> bool:
        # A qcow2 snapshot or clone makes the current image a read-only backing file.
        return self._format(volume) == "qcow2"

    def snapshot_path(self, snapshot: Snapshot) -> str:
        return self._file(f"snapshot-{snapshot.id}")

    @staticmethod
    def _format(obj: Volume | Snapshot) -> str:
        return obj.driver_data.get("format", "raw")

    def _run(self, *args: str) -> str:
        command = [self._qemu_img_path(), *args]
        proc = run(command, cwd=self.path)
        if proc.returncode:
            raise DriverError(f"file driver: {' '.join(command[:2])} failed: {proc.stderr.strip() or proc.stdout}")
        return proc.stdout

    @staticmethod
    def _unlink(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # raw copies ---------------------------------------------------------
    def _copy(self, src: str, dst: str) -> str:
        """Point-in-time copy to a temp name, then rename: never a half file under dst."""
        tmp = dst + ".tmp"
        self._unlink(tmp)
        method = None
        if self.conf["reflink"] != "never" and self._reflink(src, tmp):
            method = "reflink"
        elif self.conf["reflink"] == "always":
            raise DriverError(
                f"backend.reflink: 'always', but the filesystem of {self.path} cannot reflink (XFS made with "
                "reflink=1 and btrfs can); use reflink 'auto' or 'never'", "backend.reflink")
        else:
            proc = run(["cp", "--sparse=always", "--reflink=never", src, tmp])
            if proc.returncode:
                self._unlink(tmp)
                raise DriverError(f"file driver: copying {src} failed: {proc.stderr.strip()}")
            method = "copy"
        os.replace(tmp, dst)
        return method

    @staticmethod
    def _reflink(src: str, dst: str) -> bool:
        with open(src, "rb") as source, open(dst, "wb") as target:
            try:
                fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
                return True
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
                    return False
                raise

    def _truncate(self, path: str, size_gib: int) -> None:
        try:
            if os.path.getsize(path) < size_gib * GiB:
                os.truncate(path, size_gib * GiB)
        except OSError as exc:
            raise DriverError(f"file driver: cannot size {path} to {size_gib} GiB: {exc.strerror}") from None

    # volumes ------------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        fmt = self.conf["format"]
        path = self.volume_path(volume)
        # Only ever called for a record still 'creating': a leftover file from a
        # crashed run holds nothing a user could have written.
        self._unlink(path)
        if fmt == "qcow2":
            self._run("create", "-q", "-f", "qcow2", path + ".tmp", f"{volume.size}G")
            os.replace(path + ".tmp", path)
        else:
            try:
                with open(path + ".tmp", "wb"):
                    pass
                os.truncate(path + ".tmp", volume.size * GiB)
                os.replace(path + ".tmp", path)
            except OSError as exc:
                self._unlink(path + ".tmp")
                raise DriverError(f"file driver: cannot create {path} of {volume.size} GiB: {exc.strerror}") from None
        return {"format": fmt}

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        fmt = self._format(snapshot)
        path = self.volume_path(volume)
        if fmt == "qcow2":
            with self._chain_lock(exclusive=False):
                self._overlay(os.path.basename(self.snapshot_path(snapshot)), path, volume.size)
        else:
            method = self._copy(self.snapshot_path(snapshot), path)
            self._truncate(path, volume.size)
            return {"format": fmt, "copy_method": method}
        return {"format": fmt}

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        fmt = self._format(source)
        path = self.volume_path(volume)
        if fmt == "qcow2":
            base = f"clone-base-{volume.id}"
            with self._chain_lock(exclusive=False):
                self._freeze(self.volume_path(source), base, source.size)
                self._overlay(base, path, volume.size)
            return {"format": fmt}, source.driver_data
        method = self._copy(self.volume_path(source), path)
        self._truncate(path, volume.size)
        return {"format": fmt, "copy_method": method}, source.driver_data

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        path = self.volume_path(volume)
        if self._format(volume) != "qcow2":
            self._truncate(path, new_size)
        elif _qcow2_header(path)[1] < new_size * GiB:  # an attached image may be grown by its daemon already
            with self._chain_lock(exclusive=False):
                self._run("resize", "-q", "-f", "qcow2", path, f"{new_size}G")
        if self.conf["target"] == "iscsi" and self._format(volume) == "raw":
            self._tgt().refresh(self._iqn(volume), path)
        return volume.driver_data

    def delete_volume(self, volume: Volume) -> None:
        path = self.volume_path(volume)
        if self._format(volume) != "qcow2":
            self._unlink(path)
            self._unlink(path + ".tmp")
            return
        with self._chain_lock(exclusive=True):
            backing = self._backing(path)
            self._unlink(path)
            self._unlink(path + ".tmp")
            if backing:
                self._collect(backing)
            # A clone interrupted before its image existed left its frozen base behind.
            self._collect(f"clone-base-{volume.id}")
            if volume.status in RESUMED_DELETE:
                self._collect_garbage()

    def volume_exists(self, volume: Volume) -> bool:
        return os.path.exists(self.volume_path(volume))

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        fmt = self._format(volume)
        if fmt == "qcow2":
            with self._chain_lock(exclusive=False):
                self._freeze(self.volume_path(volume), os.path.basename(self.snapshot_path(snapshot)), volume.size)
            return {"format": fmt}, volume.driver_data
        method = self._copy(self.volume_path(volume), self.snapshot_path(snapshot))
        return {"format": fmt, "copy_method": method}, volume.driver_data

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        path = self.snapshot_path(snapshot)
        self._unlink(path + ".tmp")
        if self._format(snapshot) != "qcow2":
            self._unlink(path)
            return
        with self._chain_lock(exclusive=True):
            if os.path.exists(path):
                with open(path + HIDDEN_MARK, "w"):
                    pass
                self._collect(os.path.basename(path))
            else:
                self._unlink(path + HIDDEN_MARK)  # an interrupted collection removed the image, not its mark
            if snapshot.status in RESUMED_DELETE:
                self._collect_garbage()

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        return os.path.exists(self.snapshot_path(snapshot))

    # qcow2 chains -------------------------------------------------------
    @contextlib.contextmanager
    def _chain_lock(self, exclusive: bool) -> Iterator[None]:
        """Serialize work on qcow2 chains within the backend directory.

        Frozen images are shared by many volumes, beyond the per-object locks of
        the state store: merging or removing them (exclusive) must not run while
        another task opens a chain that holds them (shared) - qemu-img fails on
        its image locks, or worse, reads a chain being rebased. Measured with 20
        forks deleting clones of one volume. The lock is an flock on the
        directory itself, so it leaves no file behind.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise DriverError(f"backend.path: cannot open directory {self.path}: {exc.strerror}",
                              "backend.path") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _overlay(self, backing: str, path: str, size_gib: int) -> None:
        self._unlink(path + ".tmp")
        self._run("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, path + ".tmp", f"{size_gib}G")
        os.replace(path + ".tmp", path)

    def _freeze(self, volume_path: str, frozen: str, size_gib: int) -> None:
        """Make the volume's current image the read-only `frozen` and put an empty
        overlay on it under the volume's name.

        The volume's name never goes missing, so a crash at any point leaves the volume
        whole and a re-run (or a delete of what was being made) finishes or undoes it:
        the image gets a second name first (a hard link), then the overlay, made aside,
        replaces the volume's name atomically.
        """
        frozen_path = self._file(frozen)
        if not os.path.exists(frozen_path):
            if not os.path.exists(volume_path):
                raise DriverError(f"file driver: volume image {volume_path} is missing")
            try:
                os.link(volume_path, frozen_path)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                os.rename(volume_path, frozen_path)  # a filesystem without hard links: a short window
        if not os.path.exists(volume_path) or os.path.samefile(volume_path, frozen_path):
            self._overlay(frozen, volume_path, size_gib)
        os.chmod(frozen_path, 0o444)

    def _backing(self, path: str) -> str | None:
        try:
            return _qcow2_header(path)[0]
        except FileNotFoundError:
            return None

    def _images(self) -> list[str]:
        return [n for n in os.listdir(self.path)
                if n.startswith(("volume-", "snapshot-", "clone-base-"))
                and not n.endswith((".tmp", HIDDEN_MARK))]

    def _dependents(self, name: str) -> list[str]:
        return [n for n in self._images() if n != name and self._backing(self._file(n)) == name]

    def _is_hidden(self, name: str) -> bool:
        return name.startswith("clone-base-") or os.path.exists(self._file(name + HIDDEN_MARK))

    def _collect(self, name: str) -> None:
        """Remove a hidden frozen image nobody depends on, then look at its backing.

        A hidden image with one dependent is merged into it (qemu-img rebase
        copies what the dependent needs), so chains do not grow without bound.
        """
        while name and self._is_hidden(name) and os.path.exists(self._file(name)):
            dependents = self._dependents(name)
            if len(dependents) > 1:
                return
            backing = self._backing(self._file(name))
            if dependents:
                self._run("rebase", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing or "", dependents[0])
            self._unlink(self._file(name))
            self._unlink(self._file(name + HIDDEN_MARK))
            name = backing

    def _backing_map(self) -> dict[str, str | None]:
        """{image: its backing file name} of every image in the directory, from their headers."""
        found = {}
        for name in self._images():
            try:
                found[name] = _qcow2_header(self._file(name))[0]
            except OSError:
                continue  # removed meanwhile
        return found

    def _garbage(self) -> list[str]:
        """Hidden frozen images nothing depends on: what an interrupted collection leaves."""
        backings = self._backing_map()
        needed = {b for b in backings.values() if b}
        return sorted(n for n in backings if n not in needed and self._is_hidden(n))

    def _collect_garbage(self) -> None:
        """After an interrupted delete: collect what it did not get to (under the exclusive chain lock)."""
        for name in self._garbage():
            self._collect(name)

    # connections --------------------------------------------------------
    def _tgt(self):
        from .tgt import Tgt
        return Tgt(self.conf["tgt_control_port"])

    def _iqn(self, volume: Volume) -> str:
        return f"{self.conf['iscsi_target_prefix']}volume-{volume.id}"

    @staticmethod
    def chap_user(connection: Connection) -> str:
        return "bs" + connection.id.replace("-", "")

    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        path = self.volume_path(volume)
        if not os.path.exists(path):
            raise DriverError(f"file driver: volume image {path} is missing")
        fmt = self._format(volume)
        if self.conf["target"] == "local":
            return {"driver_volume_type": "local",
                    "data": {"device_path": path, "format": fmt, "volume_id": volume.id,
                             "access_mode": connection.mode}}
        if fmt != "raw":
            raise Conflict(f"backend.target: volume {volume.name!r} is {fmt}; the iscsi target exports raw "
                           "volumes only", "backend.target")
        initiator = connection.connector.get("initiator")
        if not initiator:
            raise InvalidParameter("connector.initiator: an iscsi export needs the host's initiator IQN "
                                   "(storage_host_info returns it)", "connector.initiator")
        old = connection.connection_info.get("data") or {}
        user = self.chap_user(connection)
        # Same connection, same secret: a re-export (tgtd restarted) keeps working credentials.
        password = old.get("auth_password") if old.get("auth_username") == user else None
        password = password or "".join(secrets.choice(string.ascii_letters + string.digits) for _position in range(16))
        tgt = self._tgt()
        target = tgt.ensure_target(self._iqn(volume), path)
        tgt.allow(target, initiator, user, password)
        return {"driver_volume_type": "iscsi",
                "data": {"target_discovered": False,
                         "target_portal": f"{self.conf['iscsi_ip_address']}:{self.conf['iscsi_port']}",
                         "target_iqn": self._iqn(volume), "target_lun": 1, "volume_id": volume.id,
                         "auth_method": "CHAP", "auth_username": user, "auth_password": password,
                         "access_mode": connection.mode, "encrypted": False, "discard": False}}

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        if (connection.connection_info or {}).get("driver_volume_type") != "iscsi":
            return
        self._tgt().revoke(self._iqn(volume), connection.connector.get("initiator"), self.chap_user(connection))

    # backend ------------------------------------------------------------
    def _virtual_size(self, name: str) -> int:
        path = self._file(name)
        size = _qcow2_header(path)[1]
        return size if size else os.path.getsize(path)

    def _names(self) -> list[str]:
        try:
            return os.listdir(self.path)
        except FileNotFoundError:
            return []

    def list_volume_ids(self) -> list[str]:
        return sorted(n[len("volume-"):] for n in self._names()
                      if n.startswith("volume-") and not n.endswith(".tmp"))

    def list_snapshot_ids(self) -> list[str]:
        names = set(self._names())
        return sorted(n[len("snapshot-"):] for n in names
                      if n.startswith("snapshot-") and not n.endswith((".tmp", HIDDEN_MARK))
                      and n + HIDDEN_MARK not in names)

    def list_leftovers(self) -> list[str]:
        names = set(self._names())
        found = [n for n in names if n.endswith(".tmp") or n.startswith(".reflink-probe")]
        found += [n for n in names if n.endswith(HIDDEN_MARK) and n[:-len(HIDDEN_MARK)] not in names]
        if any(n.startswith("clone-base-") or n.endswith(HIDDEN_MARK) for n in names):
            found += self._garbage()
        return sorted(found)

    def get_stats(self) -> dict:
        self.check_setup()
        fs = os.statvfs(self.path)
        ids = self.list_volume_ids()
        provisioned = sum(self._virtual_size(f"volume-{i}") for i in ids)
        total = fs.f_blocks * fs.f_frsize / GiB
        free = fs.f_bavail * fs.f_frsize / GiB
        return {
            "driver": self.name,
            "total_capacity_gb": round(total, 2),
            "free_capacity_gb": round(free, 2),
            "provisioned_capacity_gb": round(provisioned / GiB, 2),
            "volume_count": len(ids),
            "pools": [{"name": self.backend_name, "path": self.path, "total_capacity_gb": round(total, 2),
                       "free_capacity_gb": round(free, 2), "format": self.conf["format"],
                       "reflink": self._reflink_supported()}],
        }

    def _reflink_supported(self) -> bool:
        probe = self._file(".reflink-probe")
        try:
            with open(probe, "wb") as handle:
                handle.write(b"x")
            return self._reflink(probe, probe + ".clone")
        finally:
            self._unlink(probe)
            self._unlink(probe + ".clone")
