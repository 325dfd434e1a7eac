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

Exports (drivers/file/export.py, raw only but local): `iscsi` is tgt on the backend's host, `lio` and `nvmet`
the kernel's iSCSI and NVMe-oF/TCP targets (targets/). Each connection gets a target of its own, open to its
host alone (its initiator name or host NQN; iSCSI: with that connection's CHAP account alone), removed with
it; an extend makes every target report the new size.

Volume data is private: files are made under umask 077 (images 0600, a frozen qcow2
image 0400) in a directory created 0700. With `image_group`, that group gets
read-write access instead (umask 007: images 0660, frozen 0440; a directory this
driver creates is 2770 with that group, so new images inherit it). A directory
that already exists is left as its owner set it; images made before keep their mode.
"""

from __future__ import annotations

import contextlib
import grp
import os
import time
from typing import Iterator

from ... import targets
from ...config import Opt
from ...errors import DriverError, InvalidParameter
from ...objects import Snapshot, Volume
from ...probe import probe_file
from ...units import GiB
from ..base import Driver
from .adopt import adopt_volume, find_existing
from .export import ISCSI_OPTIONS, IscsiExport
from .image import ImageFormat, file_image_of
from .owner import claim, read_marker, release
from .qcow2 import HIDDEN_MARK, Qcow2Format, qcow2_header, qcow2_virtual_size
from .raw import PROBE_LIFETIME, REFLINK_PROBE, RawFormat, reflink_supported
from .space import undone_on_failure

# format name -> its class; a volume's record says which one made it.
FORMATS: dict[str, type[ImageFormat]] = {f.name: f for f in (RawFormat, Qcow2Format)}


class FileDriver(IscsiExport, Driver):
    name = "file"
    image_of = file_image_of
    options = (
        Opt("path", "path", required=True,
            help="Directory holding the volume files, on the host the module runs on. Created if missing."),
        Opt("format", default="raw", choices=tuple(FORMATS),
            help="Image format of new volumes. raw: sparse files; qcow2: snapshots and clones as overlays."),
        Opt("reflink", default="auto", choices=("auto", "always", "never"),
            help="raw copies by reflink: auto uses it where the filesystem can, always fails where it cannot."),
        Opt("target", default="local", choices=("local", "iscsi", *targets.KINDS),
            help="How volumes are exported. local: the file path, attached on this host; iscsi: the userspace "
                 "target tgt on this host; lio: the kernel's iSCSI target (LIO); nvmet: the kernel's NVMe-oF/TCP "
                 "target. iscsi, lio and nvmet: a target per connection open to that host only (iscsi and lio: "
                 "with its own CHAP account), raw volumes only."),
        *ISCSI_OPTIONS,
        *targets.OPTIONS,
        Opt("image_group", default="",
            help="A group of the host given read-write access to the images (0660) and to a directory this "
                 "driver creates (2770, setgid). Empty: images 0600 and a new directory 0700, owner only."),
    )
    locating_options = ("path", "format")
    capabilities = {
        "formats": list(FORMATS),
        "thin_provisioning": True,
        "snapshot": {f.name: f.snapshot_text for f in FORMATS.values()},
        "clone": {f.name: f.clone_text for f in FORMATS.values()},
        "snapshot_delete_with_dependents": {f.name: f.snapshot_delete_text for f in FORMATS.values()},
        "revert_to_snapshot": {f.name: f.revert_text for f in FORMATS.values()},
        "multiattach": True,
        "connection_types": {"local": "file path (loop device, or qemu-storage-daemon FUSE for qcow2)",
                             "iscsi": "tgt target per connection (its host's initiator and CHAP account only) on the "
                                      "volume's file; raw only",
                             "lio": "LIO iSCSI target per connection (its host's initiator, CHAP account); raw only",
                             "nvmet": "nvmet NVMe/TCP subsystem per connection (its host's NQN only); raw only"},
    }

    def __init__(self, backend_name: str, conf: dict) -> None:
        super().__init__(backend_name, conf)
        if not os.path.isabs(conf["path"]):
            raise InvalidParameter(f"backend.path: {conf['path']!r} must be an absolute directory path",
                                   "backend.path")
        self.path = os.path.normpath(conf["path"])
        if conf["target"] != "local" and conf["format"] == "qcow2":
            raise InvalidParameter(f"backend.target: {conf['target']} exports raw files only (it serves a file's "
                                   "bytes as they are); use format raw, or target local for qcow2", "backend.target")
        if conf["target"] in targets.KINDS:
            targets.portals(conf, conf["target"])  # a bad address is refused here, before anything is made

    def locator(self) -> dict:
        return {"path": self.path, "format": self.conf["format"]}

    # set-up -------------------------------------------------------------
    @property
    def frozen_mode(self) -> int:
        """The mode of a read-only (frozen qcow2) image."""
        return 0o440 if self.conf.get("image_group") else 0o400

    def _group_id(self) -> int | None:
        group = self.conf.get("image_group")
        if not group:
            return None
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise InvalidParameter(f"backend.image_group: no group {group!r} on this host",
                                   "backend.image_group") from None

    @contextlib.contextmanager
    def private(self) -> Iterator[None]:
        """Files made in this block (by this process, cp or qemu-img) are the owner's (and image_group's) only."""
        old = os.umask(0o007 if self.conf.get("image_group") else 0o077)
        try:
            yield
        finally:
            os.umask(old)

    def _share(self, *paths: str) -> None:
        """With image_group, writable images the group can write too (qemu-img creates 0644 & ~umask)."""
        if not self.conf.get("image_group"):
            return
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_mode & 0o200:  # frozen images stay read-only
                    os.chmod(path, 0o660)

    def check_setup(self) -> None:
        gid = self._group_id()
        created = not os.path.lexists(self.path)
        try:
            with self.private():
                os.makedirs(self.path, mode=0o700 if gid is None else 0o770, exist_ok=True)
            if created and gid is not None:
                os.chown(self.path, -1, gid)
                os.chmod(self.path, 0o2770)
        except OSError as exc:
            raise DriverError(f"backend.path: cannot create directory {self.path}: {exc.strerror}",
                              "backend.path") from None
        if not os.path.isdir(self.path):
            raise DriverError(f"backend.path: {self.path} exists and is not a directory", "backend.path")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DriverError(f"backend.path: directory {self.path} is not writable", "backend.path")
        FORMATS[self.conf["format"]](self).check_setup()
        claim(self)  # marks the directory as this store's, or refuses another store's (owner.py)

    def unseen_reason(self) -> str | None:
        return None if os.path.isdir(self.path) else f"backend.path: {self.path} is not a directory on this host"

    # which store owns the directory (owner.py) --------------------------------
    def read_owner(self) -> dict | None:
        return read_marker(self)

    # paths and formats ----------------------------------------------------
    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def volume_path(self, volume: Volume) -> str:
        return self.local_path(volume.id)

    def local_path(self, volume_id: str) -> str:
        return self.file(f"volume-{volume_id}")

    def snapshot_path(self, snapshot: Snapshot) -> str:
        return self.file(f"snapshot-{snapshot.id}")

    @staticmethod
    def unlink(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def format_of(self, obj: Volume | Snapshot) -> ImageFormat:
        """The format of an existing volume or snapshot, as its record says."""
        return FORMATS[obj.driver_data.get("format", "raw")](self)

    def copy_freezes_image(self, volume: Volume) -> bool:
        return self.format_of(volume).copy_freezes_image

    def volumes_share_snapshot_data(self, snapshot: Snapshot) -> bool:
        return self.format_of(snapshot).volumes_share_snapshot_data

    def half_made_data(self, obj: Volume | Snapshot, source: Volume | Snapshot) -> dict:
        # A record whose create never returned has no format, and format_of() would call it raw:
        # a qcow2 one deleted as raw loses its volume's data (the frozen image is removed under
        # the overlay) or leaves the clone's frozen base behind. It has its source's format.
        if "format" in obj.driver_data:
            return obj.driver_data
        return {**obj.driver_data, "format": self.format_of(source).name}

    def _drop_frozen_copy(self, frozen: str, volume: Volume) -> None:
        """Undo a qcow2 freeze that stopped before the overlay replaced the volume: the frozen name is then
        only a second name of the volume's image. After the swap it holds the data: left to the delete."""
        path = self.volume_path(volume)
        self.unlink(path + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            if os.path.samefile(path, frozen):
                self.unlink(frozen)

    # volumes ------------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        fmt = FORMATS[self.conf["format"]](self)
        path = self.volume_path(volume)
        # Only ever called for a record still 'creating': a leftover file from a
        # crashed run holds nothing a user could have written.
        self.unlink(path)
        with undone_on_failure(self.path, f"volume {volume.name!r}", lambda: fmt.delete(volume, path)), self.private():
            made = {"format": fmt.name, **fmt.create(volume, path)}
        self._share(path)
        return made

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        fmt = self.format_of(snapshot)
        path = self.volume_path(volume)
        with undone_on_failure(self.path, f"volume {volume.name!r} from snapshot {snapshot.name!r}",
                               lambda: fmt.delete(volume, path), "; the snapshot is unchanged"), \
                self.private():
            made = {"format": fmt.name, **fmt.from_snapshot(volume, snapshot, path)}
        self._share(path)
        return made

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        fmt = self.format_of(source)
        path = self.volume_path(volume)
        # qcow2: a frozen base (clone-base-<id>) that never got its overlay is collected by the delete.
        with undone_on_failure(self.path, f"clone {volume.name!r} of volume {source.name!r}",
                               lambda: fmt.delete(volume, path), f"; volume {source.name!r} is unchanged"), \
                self.private():
            made = {"format": fmt.name, **fmt.clone(volume, source, path)}
        self._share(self.volume_path(volume), self.volume_path(source))
        return made, source.driver_data

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        path = self.volume_path(volume)
        fmt = self.format_of(volume)
        fmt.extend(volume, path, new_size)
        if self.conf["target"] == "iscsi" and "iscsi" in fmt.targets:
            self._tgt().refresh(path)
        elif self.conf["target"] in targets.KINDS and "iscsi" in fmt.targets:
            self.kernel_refresh(volume)
        return volume.driver_data

    def delete_volume(self, volume: Volume) -> None:
        with self.private():  # a qcow2 merge may write a new image
            self.format_of(volume).delete(volume, self.volume_path(volume))
        release(self)

    def volume_exists(self, volume: Volume) -> bool:
        return os.path.exists(self.volume_path(volume))

    def inspect_volume(self, volume: Volume) -> dict:
        # One stat and a 32-byte header read: cheap enough for every task with nothing to do.
        return self.inspect_from_probe(volume, probe_file(**self.probe_request(volume)))

    def probe_request(self, obj: Volume | Snapshot) -> dict:
        if isinstance(obj, Snapshot):
            return {"path": self.snapshot_path(obj)}
        # A raw volume's data may start like a qcow2 header: only a qcow2 record's image is read as one.
        return {"path": self.volume_path(obj), "head": 32 if self.format_of(obj).name == "qcow2" else 0}

    def inspect_from_probe(self, obj: Volume | Snapshot, report: dict) -> dict:
        path = self.probe_request(obj)["path"]
        if not report["exists"] or isinstance(obj, Snapshot):
            return {"object": path, "exists": report["exists"]}
        virtual_size = qcow2_virtual_size(bytes.fromhex(report.get("head", "")))
        if virtual_size:
            return {"object": path, "exists": True, "format": "qcow2", "size": virtual_size}
        return {"object": path, "exists": True, "format": "raw", "size": report["size"]}

    def allocated_bytes(self, volume: Volume) -> int | None:
        # The blocks of the volume's own file: sparse raw; a qcow2 overlay without its frozen backing images.
        try:
            return os.stat(self.volume_path(volume)).st_blocks * 512
        except FileNotFoundError:
            return None

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        path = self.volume_path(volume)
        if not os.path.exists(path):
            raise DriverError(f"file driver: volume image {path} is missing")
        if not os.path.exists(self.snapshot_path(snapshot)):
            raise DriverError(f"file driver: snapshot image {self.snapshot_path(snapshot)} is missing", "revert_to")
        with self.private():
            self.format_of(volume).revert(volume, snapshot, path)
        self._share(path)
        return volume.driver_data

    # adopting (storage_volume source.existing: adopt.py) -------------------
    def find_existing(self, name: str) -> dict | None:
        return find_existing(self, name)

    def adopt_volume(self, volume: Volume, name: str) -> dict:
        made = adopt_volume(self, volume, name)
        self._share(self.volume_path(volume))
        return made

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        fmt = self.format_of(volume)
        path = self.snapshot_path(snapshot)

        def undo() -> None:
            self.unlink(path + ".tmp")
            if fmt.copy_freezes_image:
                self._drop_frozen_copy(path, volume)
            else:
                self.unlink(path)

        with undone_on_failure(self.path, f"snapshot {snapshot.name!r} of volume {volume.name!r}", undo,
                               f"; volume {volume.name!r} is unchanged"), self.private():
            made = {"format": fmt.name, **fmt.snapshot(snapshot, volume)}
        self._share(self.volume_path(volume), self.snapshot_path(snapshot))
        return made, volume.driver_data

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        path = self.snapshot_path(snapshot)
        self.unlink(path + ".tmp")
        with self.private():  # a qcow2 merge may write a new image
            self.format_of(snapshot).delete_snapshot(snapshot, path)
        release(self)

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        return os.path.exists(self.snapshot_path(snapshot))

    def inspect_snapshot(self, snapshot: Snapshot) -> dict:
        return self.inspect_from_probe(snapshot, probe_file(**self.probe_request(snapshot)))

    # backend ------------------------------------------------------------
    def _virtual_size(self, name: str) -> int:
        path = self.file(name)
        size = qcow2_header(path)[1]
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
                      if n + HIDDEN_MARK not in names)

    def _stale_probe(self, name: str) -> bool:  # a killed task's reflink probe, not another task's live one
        with contextlib.suppress(FileNotFoundError):
            return name.startswith(REFLINK_PROBE) and time.time() - os.lstat(self.file(name)).st_mtime > PROBE_LIFETIME
        return False

    def list_leftovers(self) -> list[str]:
        names = set(self._names())
        found = [n for n in names if n.endswith(".tmp") or self._stale_probe(n)]
        found += [n for n in names if n.endswith(HIDDEN_MARK) and n[:-len(HIDDEN_MARK)] not in names]
        if any(n.startswith("clone-base-") or n.endswith(HIDDEN_MARK) for n in names):
            found += Qcow2Format(self).garbage()
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
                       "reflink": reflink_supported(self.path)}],
        }
