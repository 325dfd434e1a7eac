# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `rbd` driver: volumes as Ceph RBD images, through librbd's Python bindings.

Options carry the names Cinder's RBD driver gives them, so a cinder.conf backend
section carries over. Images are named by id, never by a user's name:

  volume-<id>                    a volume
  volume-<id>@snapshot-<id>      a snapshot: an RBD snapshot of its volume's image
  volume-<src>@clone-base-<id>   private snapshot of the source of clone <id>
  volume-<id>.deleted            a deleted volume kept hidden while clones still use it

Volumes from snapshots and clones of volumes are copy-on-write clones of a
protected snapshot. A clone is flattened (made independent of its parent) when
`rbd_flatten_volume_from_snapshot` asks for it (volumes from snapshots) or when
its chain of parents would pass `rbd_max_clone_depth`; with depth 0 every copy
is a full copy. Deleting a snapshot that volumes were made from flattens those
volumes first. Deleting a volume whose clones still use it hides the image;
the hidden image and its private snapshots go with the last clone. So parents
and children can be deleted in any order and the pool ends up clean.

`rados` and `rbd` are imported only inside the methods that talk to the
cluster: the controller builds this driver only to validate options, and the
bindings exist only for the Python that the distribution built them for.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any, Iterator

from ..config import Opt
from ..errors import DriverError, InvalidParameter, MissingDependency
from ..objects import RESUMED_DELETE, Connection, Snapshot, Volume, is_uuid
from ..units import GiB
from .base import Driver

HIDDEN_SUFFIX = ".deleted"
USER_SNAP_PREFIX = "snapshot-"
CLONE_BASE_PREFIX = "clone-base-"
# librados' own limit when rados_connect_timeout is negative (client_mount_timeout).
LIBRADOS_MOUNT_TIMEOUT = 300
# A client that dies with an image open (a module killed mid-task) keeps its watch on the image
# until the OSDs time it out (osd_client_watch_timeout, 30 s): until then the image is "busy" and
# cannot be removed. Seconds to keep trying, and between tries.
BUSY_TIMEOUT = 45
BUSY_RETRY_INTERVAL = 2
BINDINGS_HELP = (
    "the Ceph Python bindings (modules rados and rbd) on the host the module runs on: Debian/Ubuntu "
    "packages python3-rados and python3-rbd (RHEL/CentOS: python3-rados and python3-rbd from the Ceph "
    "repositories). There is no pip package; the bindings load only in the Python the distribution built "
    "them for (Debian 12: /usr/bin/python3.11), so point ansible_python_interpreter at that Python or at a "
    "venv made from it with --system-site-packages")


class RbdDriver(Driver):
    name = "rbd"
    options = (
        Opt("rbd_pool", default="rbd", help="The RADOS pool where volumes are stored."),
        Opt("rbd_ceph_conf", "path",
            help="Path to the Ceph configuration file on the host the module runs on. Default: librados' "
                 "search (/etc/ceph/<rbd_cluster_name>.conf, ~/.ceph/config, ./ceph.conf)."),
        Opt("rbd_user",
            help="The RADOS client name (without 'client.') for cephx authentication. Default: librados' "
                 "default, admin."),
        Opt("rbd_keyring_conf", "path",
            help="Path to the keyring file holding rbd_user's key. Default: the keyring setting of "
                 "rbd_ceph_conf, else /etc/ceph/<cluster>.client.<user>.keyring."),
        Opt("rbd_cluster_name", default="ceph", help="The name of the Ceph cluster."),
        Opt("rbd_secret_uuid",
            help="UUID of the libvirt secret holding rbd_user's key, passed to consumers in the connection info."),
        Opt("rbd_flatten_volume_from_snapshot", "bool", default=False,
            help="Flatten volumes made from snapshots, so that they do not depend on the snapshot."),
        Opt("rbd_max_clone_depth", "int", default=5, min=0,
            help="Longest chain of copy-on-write clones behind a volume; a new volume that would pass it is "
                 "flattened. 0 disables cloning: volumes from snapshots and clones are full copies."),
        Opt("rados_connect_timeout", "int", default=-1,
            help="Seconds to wait for the cluster when connecting (and for each monitor and OSD operation). "
                 f"Negative: librados' default ({LIBRADOS_MOUNT_TIMEOUT} s to connect)."),
    )
    capabilities = {
        "formats": ["raw"],
        "thin_provisioning": True,
        "snapshot": "RBD snapshot of the volume's image (constant time)",
        "clone": "copy-on-write clone of a protected snapshot; flattened past rbd_max_clone_depth, "
                 "full copy when rbd_max_clone_depth is 0",
        "volume_from_snapshot": "copy-on-write clone of the snapshot; flattened when "
                                "rbd_flatten_volume_from_snapshot is true or past rbd_max_clone_depth",
        "snapshot_delete_with_dependents": "allowed: the volumes made from the snapshot are flattened first "
                                           "(a full copy of their data), then the snapshot is deleted",
        "volume_delete_with_clones": "allowed: the image is hidden (volume-<id>.deleted) until its last clone "
                                     "is deleted or flattened",
        "revert_to_snapshot": True,
        "connection": "rbd (os-brick's RBD connector; qemu/librbd userspace clients)",
        "capacity_stats": "from the cluster's df report, which the monitors get from ceph-mgr: without a "
                          "running ceph-mgr total and free read 'unknown'",
        "multiattach": False,
    }

    def __init__(self, backend_name: str, conf: dict) -> None:
        super().__init__(backend_name, conf)
        for option in ("rbd_ceph_conf", "rbd_keyring_conf"):
            path = conf[option]
            if path is not None and not os.path.isabs(path):
                raise InvalidParameter(f"backend.{option}: {path!r} must be an absolute path", f"backend.{option}")
        secret_uuid = conf["rbd_secret_uuid"]
        if secret_uuid is not None and not is_uuid(secret_uuid.lower()):
            raise InvalidParameter(f"backend.rbd_secret_uuid: {secret_uuid!r} is not a UUID (the libvirt secret's "
                                   "uuid, like 457eb676-33da-42ec-9a8c-9293d545c337)", "backend.rbd_secret_uuid")
        self.pool = conf["rbd_pool"]
        self._cluster: Any = None
        self._ioctx: Any = None
        self._rados: Any = None
        self._rbd: Any = None

    # bindings and connection --------------------------------------------
    def _bindings(self) -> tuple[Any, Any]:
        if self._rbd is None:
            try:
                import rados
                import rbd
            except ImportError as exc:
                python = f"{sys.executable} (Python {sys.version_info[0]}.{sys.version_info[1]})"
                raise MissingDependency(f"backend.driver: rbd needs {BINDINGS_HELP}. This module ran under "
                                        f"{python}, where importing them failed: {exc}", "rados") from None
            self._rados, self._rbd = rados, rbd
        return self._rados, self._rbd

    def _errors(self) -> tuple[type[Exception], ...]:
        """The bindings' error classes; loading them first also means a missing binding
        is reported as such, before any except clause needs them."""
        rados, rbd = self._bindings()
        return rbd.Error, rados.Error

    def _user_text(self) -> str:
        return f"client.{self.conf['rbd_user'] or 'admin'}"

    def _timeout_text(self) -> str:
        timeout = self.conf["rados_connect_timeout"]
        if timeout < 0:
            return f"librados' default of {LIBRADOS_MOUNT_TIMEOUT} s (rados_connect_timeout is {timeout})"
        return f"rados_connect_timeout ({timeout} s)"

    def _check_files(self) -> None:
        for option, what in (("rbd_ceph_conf", "Ceph configuration file"), ("rbd_keyring_conf", "keyring")):
            path = self.conf[option]
            if path is not None and not os.access(path, os.R_OK):
                problem = "cannot be read" if os.path.exists(path) else "does not exist"
                raise DriverError(f"backend.{option}: the {what} {path} {problem} on this host", f"backend.{option}")
        keyring = self.conf["rbd_keyring_conf"]
        if keyring is not None:
            # librados reports a keyring without the user's entry as a refused key: say what is wrong.
            names = self._keyring_names(keyring)
            if names and self._user_text() not in names:
                raise DriverError(f"backend.rbd_keyring_conf: the keyring {keyring} holds no key for "
                                  f"{self._user_text()} (it has {', '.join(names)}); check rbd_user and "
                                  "rbd_keyring_conf", "backend.rbd_keyring_conf")

    @staticmethod
    def _keyring_names(path: str) -> list[str]:
        """Entity names of a text keyring ([client.cinder] sections); none for other formats."""
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        return [line.strip()[1:-1].strip() for line in lines
                if line.strip().startswith("[") and line.strip().endswith("]")]

    def _connect(self) -> tuple[Any, Any]:
        """The cluster handle and the pool's I/O context, opened once per driver."""
        if self._ioctx is not None:
            return self._cluster, self._ioctx
        rados = self._bindings()[0]
        self._check_files()
        conf = self.conf
        cluster = rados.Rados(rados_id=conf["rbd_user"], clustername=conf["rbd_cluster_name"],
                              conffile=conf["rbd_ceph_conf"] or "")
        try:
            if conf["rbd_keyring_conf"]:
                cluster.conf_set("keyring", conf["rbd_keyring_conf"])
            if conf["rados_connect_timeout"] >= 0:
                for setting in ("client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"):
                    cluster.conf_set(setting, str(conf["rados_connect_timeout"]))
        except rados.Error as exc:
            raise DriverError(f"rbd driver: cannot configure librados: {exc}") from None
        try:
            cluster.connect()
        except rados.Error as exc:
            error = self._connect_error(cluster, exc)  # before shutdown: it reads the handle's settings
            self._shutdown(cluster)
            raise error from None
        try:
            ioctx = cluster.open_ioctx(self.pool)
        except rados.ObjectNotFound:
            pools = ", ".join(sorted(cluster.list_pools())) or "none"
            self._shutdown(cluster)
            raise DriverError(f"backend.rbd_pool: the Ceph cluster has no pool {self.pool!r} (pools: {pools})",
                              "backend.rbd_pool") from None
        except rados.Error as exc:
            self._shutdown(cluster)
            raise DriverError(f"backend.rbd_pool: cannot open pool {self.pool!r}: {exc}", "backend.rbd_pool") from None
        self._cluster, self._ioctx = cluster, ioctx
        return cluster, ioctx

    def _connect_error(self, cluster: Any, exc: Exception) -> DriverError:
        rados = self._rados
        conf_path = self.conf["rbd_ceph_conf"]
        where = conf_path or f"librados' default search for {self.conf['rbd_cluster_name']}.conf"
        keyring = self.conf["rbd_keyring_conf"] or "the keyring named in the configuration file, else " \
            f"/etc/ceph/{self.conf['rbd_cluster_name']}.{self._user_text()}.keyring"
        if "conf_read_file" in str(exc):
            return DriverError(f"backend.rbd_ceph_conf: no Ceph configuration file found ({where}); set "
                               "rbd_ceph_conf to its path", "backend.rbd_ceph_conf")
        if isinstance(exc, rados.TimedOut):
            try:
                monitors = cluster.conf_get("mon_host") or "none configured"
            except rados.Error:
                monitors = "unknown"
            return DriverError(f"backend: the Ceph cluster did not answer within {self._timeout_text()}; "
                               f"monitors {monitors} (from {where}). Check that they run and are reachable "
                               "from this host", "backend.rados_connect_timeout")
        if isinstance(exc, rados.PermissionDeniedError):
            return DriverError(f"backend.rbd_user: the Ceph cluster refused {self._user_text()} (authentication "
                               f"failed with the key from {keyring}); check rbd_user and rbd_keyring_conf",
                               "backend.rbd_keyring_conf")
        if isinstance(exc, rados.ObjectNotFound):
            return DriverError(f"backend.rbd_keyring_conf: no key for {self._user_text()} found in {keyring}; "
                               "check rbd_user and rbd_keyring_conf", "backend.rbd_keyring_conf")
        return DriverError(f"backend: cannot connect to the Ceph cluster as {self._user_text()} "
                           f"(configuration {where}): {exc}")

    @staticmethod
    def _shutdown(cluster: Any) -> None:
        try:
            cluster.shutdown()
        except Exception:  # best effort on a handle that already failed
            pass

    def close(self) -> None:
        """Close the pool context and the cluster connection (also done at process exit)."""
        if self._ioctx is not None:
            self._ioctx.close()
            self._shutdown(self._cluster)
        self._cluster = self._ioctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down the bindings
            pass

    # set-up -------------------------------------------------------------
    def check_setup(self) -> None:
        ioctx = self._connect()[1]
        rbd = self._rbd
        try:
            rbd.RBD().list(ioctx)
        except rbd.PermissionError:
            raise DriverError(f"backend.rbd_user: {self._user_text()} may not use pool {self.pool!r}; give it "
                              f"osd 'profile rbd pool={self.pool}' (and mon 'profile rbd')",
                              "backend.rbd_user") from None
        except rbd.Error as exc:
            raise DriverError(f"backend.rbd_pool: cannot list images in pool {self.pool!r}: {exc}",
                              "backend.rbd_pool") from None

    # names and small helpers ----------------------------------------------
    @staticmethod
    def volume_image(volume_id: str) -> str:
        return f"volume-{volume_id}"

    @staticmethod
    def snapshot_name(snapshot: Snapshot) -> str:
        return f"{USER_SNAP_PREFIX}{snapshot.id}"

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """The bindings' errors in the block become one DriverError saying what failed (loading the
        bindings first, so a missing one is reported as such)."""
        errors = self._errors()
        try:
            yield
        except errors as exc:
            raise DriverError(f"rbd driver: {what} in pool {self.pool!r} failed: {exc}") from None

    def _image(self, name: str, snapshot: str | None = None, read_only: bool = False) -> Any:
        ioctx = self._connect()[1]
        return self._rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)

    def _names(self) -> list[str]:
        ioctx = self._connect()[1]
        return self._rbd.RBD().list(ioctx)

    def _exists(self, name: str) -> bool:
        try:
            with self._image(name, read_only=True):
                return True
        except self._rbd.ImageNotFound:
            return False

    def _find_volume_image(self, volume_id: str) -> str | None:
        """The image of a volume, under its own name or hidden."""
        for name in (self.volume_image(volume_id), self.volume_image(volume_id) + HIDDEN_SUFFIX):
            if self._exists(name):
                return name
        return None

    def _source_image(self, volume_id: str) -> str:
        name = self._find_volume_image(volume_id)
        if name is None:
            raise DriverError(f"rbd driver: the image {self.pool}/{self.volume_image(volume_id)} is missing from "
                              "the pool")
        return name

    @staticmethod
    def _snap_names(image: Any) -> list[str]:
        return [s["name"] for s in image.list_snaps()]

    def _children(self, image: Any, snap: str) -> list[tuple[str, str]]:
        """(pool, image) of the clones of image@snap."""
        image.set_snap(snap)
        try:
            return [(c["pool"], c["image"]) for c in image.list_children2()]
        finally:
            image.set_snap(None)

    def _parent(self, image: Any) -> tuple[str, str, str] | None:
        try:
            pool, name, snap = image.parent_info()
        except self._rbd.ImageNotFound:
            return None
        return pool, name, snap

    def _depth(self, name: str) -> int:
        """How many parents stand behind an image."""
        depth = 0
        parent = (self.pool, name, "")
        while parent is not None and parent[0] == self.pool:
            with self._image(parent[1], read_only=True) as image:
                parent = self._parent(image)
            if parent is not None:
                depth += 1
        return depth

    def _resize_to(self, name: str, size_gib: int) -> None:
        with self._image(name) as image:
            if image.size() < size_gib * GiB:
                image.resize(size_gib * GiB)

    def _protect(self, image: Any, snap: str) -> None:
        if not image.is_protected_snap(snap):
            image.protect_snap(snap)

    def _flatten(self, pool: str, name: str) -> None:
        cluster, ioctx = self._connect()
        child_ioctx = ioctx if pool == self.pool else cluster.open_ioctx(pool)
        try:
            with self._rbd.Image(child_ioctx, name) as image:
                image.flatten()
        finally:
            if child_ioctx is not ioctx:
                child_ioctx.close()

    def _remove_leftover(self, name: str) -> None:
        """A volume image left by an interrupted create holds nothing a user wrote."""
        if self._exists(name):
            self._remove_or_hide(name)

    # garbage collection --------------------------------------------------
    def _remove_or_hide(self, name: str) -> None:
        """Remove an image with its unused snapshots; hide it if clones still use one."""
        with self._image(name) as image:
            parent = self._parent(image)
            in_use = False
            for snap in self._snap_names(image):
                if self._children(image, snap):
                    in_use = True
                    continue
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)
        ioctx = self._connect()[1]
        if in_use:
            if not name.endswith(HIDDEN_SUFFIX):
                self._rbd.RBD().rename(ioctx, name, name + HIDDEN_SUFFIX)
            return
        try:
            self._remove_image(ioctx, name)
        except self._rbd.ImageNotFound:
            return  # a concurrent task collected it first
        if parent is not None:
            self._collect(*parent)

    def _remove_image(self, ioctx: Any, name: str) -> None:
        """Remove an image, waiting out the watch a killed client left on it (see BUSY_TIMEOUT)."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._rbd.RBD().remove(ioctx, name)
                return
            except self._rbd.ImageBusy:
                if time.monotonic() > deadline:
                    raise DriverError(f"rbd driver: the image {self.pool}/{name} is still open by a client after "
                                      f"{BUSY_TIMEOUT} s (an attachment, or a process that has it open); detach it "
                                      "and try again") from None
                time.sleep(BUSY_RETRY_INTERVAL)

    def _collect(self, pool: str, name: str, snap: str) -> None:
        """After a clone of name@snap went away or was flattened: drop what nobody needs.

        A private clone-base snapshot goes with its last clone; a hidden image goes
        with its last snapshot, and then its own parent is looked at. A user's
        snapshot stays as it is (still protected: unprotecting it here could race
        a task that is about to clone it); deleting it unprotects it.
        """
        if pool != self.pool:
            return  # never touch another pool's images
        hidden = name.endswith(HIDDEN_SUFFIX)
        if not (hidden or snap.startswith(CLONE_BASE_PREFIX)):
            return
        try:
            with self._image(name) as image:
                if snap not in self._snap_names(image) or self._children(image, snap):
                    return
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)
                if not hidden or self._snap_names(image):
                    return
        except self._rbd.ImageNotFound:
            return  # a concurrent task collected it first
        self._remove_or_hide(name)

    # volumes ------------------------------------------------------------
    def _driver_data(self, name: str) -> dict:
        return {"pool": self.pool, "image": name}

    def create_volume(self, volume: Volume) -> dict:
        name = self.volume_image(volume.id)
        with self._failing(f"creating image {name} of {volume.size} GiB"):
            self._remove_leftover(name)
            ioctx = self._connect()[1]
            self._rbd.RBD().create(ioctx, name, volume.size * GiB, old_format=False)
        return self._driver_data(name)

    def _copy(self, source: str, snap: str, dest: str) -> None:
        """A full, independent copy of source@snap (rbd_max_clone_depth 0)."""
        ioctx = self._connect()[1]
        with self._image(source, snapshot=snap, read_only=True) as image:
            image.copy(ioctx, dest)

    def _clone(self, source: str, snap: str, dest: str, flatten: bool) -> None:
        ioctx = self._connect()[1]
        with self._image(source) as image:
            self._protect(image, snap)
        self._rbd.RBD().clone(ioctx, source, snap, ioctx, dest)
        if flatten or self._depth(dest) > self.conf["rbd_max_clone_depth"]:
            self._flatten(self.pool, dest)
            self._collect(self.pool, source, snap)

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        name = self.volume_image(volume.id)
        snap = self.snapshot_name(snapshot)
        with self._failing(f"creating image {name} from {self.volume_image(snapshot.volume_id)}@{snap}"):
            source = self._source_image(snapshot.volume_id)
            self._remove_leftover(name)
            if self.conf["rbd_max_clone_depth"] == 0:
                self._copy(source, snap, name)
            else:
                self._clone(source, snap, name, self.conf["rbd_flatten_volume_from_snapshot"])
            self._resize_to(name, volume.size)
        return self._driver_data(name)

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        name = self.volume_image(volume.id)
        base = f"{CLONE_BASE_PREFIX}{volume.id}"
        with self._failing(f"cloning volume image {self.volume_image(source.id)} to {name}"):
            source_name = self._source_image(source.id)
            self._remove_leftover(name)
            with self._image(source_name) as image:
                if base not in self._snap_names(image):
                    image.create_snap(base)
            if self.conf["rbd_max_clone_depth"] == 0:
                self._copy(source_name, base, name)
                self._collect(self.pool, source_name, base)
            else:
                self._clone(source_name, base, name, flatten=False)
            self._resize_to(name, volume.size)
        return self._driver_data(name), source.driver_data

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        name = self.volume_image(volume.id)
        with self._failing(f"extending image {name} to {new_size} GiB"):
            try:
                self._resize_to(name, new_size)
            except self._rbd.ImageNotFound:
                raise DriverError(f"rbd driver: the image {self.pool}/{name} is missing from the pool") from None
        return volume.driver_data or self._driver_data(name)

    def delete_volume(self, volume: Volume) -> None:
        name = self.volume_image(volume.id)
        with self._failing(f"deleting image {name}"):
            if self._exists(name):
                self._remove_or_hide(name)
            if volume.source_volume_id:
                # A clone interrupted before its image existed left its base snapshot behind.
                source = self._find_volume_image(volume.source_volume_id)
                if source is not None:
                    self._collect(self.pool, source, f"{CLONE_BASE_PREFIX}{volume.id}")
            if volume.status in RESUMED_DELETE:
                self._collect_garbage()

    def volume_exists(self, volume: Volume) -> bool:
        self._errors()
        return self._exists(self.volume_image(volume.id))

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        name = self.volume_image(volume.id)
        snap = self.snapshot_name(snapshot)
        with self._failing(f"reverting image {name} to snapshot {snap}"):
            with self._image(name) as image:
                image.rollback_to_snap(snap)
                # A rollback also restores the snapshot's size; volumes only grow.
                if image.size() < volume.size * GiB:
                    image.resize(volume.size * GiB)
        return volume.driver_data

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        name = self.volume_image(volume.id)
        snap = self.snapshot_name(snapshot)
        with self._failing(f"creating snapshot {name}@{snap}"):
            with self._image(name) as image:
                if snap not in self._snap_names(image):
                    image.create_snap(snap)
        return {"pool": self.pool, "image": name, "snapshot": snap}, volume.driver_data

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        snap = self.snapshot_name(snapshot)
        with self._failing(f"deleting snapshot {snap} of {self.volume_image(snapshot.volume_id)}"):
            self._delete_snapshot(snap, snapshot.volume_id)
            if snapshot.status in RESUMED_DELETE:
                self._collect_garbage()

    def _delete_snapshot(self, snap: str, volume_id: str) -> None:
        name = self._find_volume_image(volume_id)
        if name is None:
            return
        with self._image(name) as image:
            if snap not in self._snap_names(image):
                return
            children = self._children(image, snap)
        # Volumes made from the snapshot must outlive it: make them independent.
        for pool, child in children:
            self._flatten(pool, child)
        with self._image(name) as image:
            if image.is_protected_snap(snap):
                image.unprotect_snap(snap)
            image.remove_snap(snap)
        if name.endswith(HIDDEN_SUFFIX):
            self._remove_or_hide(name)

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        self._errors()
        try:
            with self._image(self.volume_image(snapshot.volume_id), read_only=True) as image:
                return self.snapshot_name(snapshot) in self._snap_names(image)
        except self._rbd.ImageNotFound:
            return False

    # connections --------------------------------------------------------
    def _monitors(self) -> tuple[list[str], list[str]]:
        """Monitor hosts and ports from the cluster's monitor map (msgr v1 address preferred:
        older kernel clients speak only v1)."""
        cluster = self._connect()[0]
        ret, out, err = cluster.mon_command(json.dumps({"prefix": "mon dump", "format": "json"}), b"")
        if ret:
            raise DriverError(f"rbd driver: cannot read the monitor map ({err or ret})")
        hosts, ports = [], []
        for mon in json.loads(out)["mons"]:
            addrs = {a["type"]: a["addr"] for a in mon.get("public_addrs", {}).get("addrvec", [])}
            addr = addrs.get("v1") or addrs.get("v2") or mon["addr"].split("/")[0]
            host, port = addr.rsplit(":", 1)
            hosts.append(host.strip("[]"))
            ports.append(port)
        return hosts, ports

    def _auth_enabled(self) -> bool:
        cluster = self._connect()[0]
        return "cephx" in (cluster.conf_get("auth_client_required") or "")

    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        name = self.volume_image(volume.id)
        with self._failing(f"exporting image {name}"):
            if not self._exists(name):
                raise DriverError(f"rbd driver: the image {self.pool}/{name} is missing from the pool")
            hosts, ports = self._monitors()
            auth_enabled = self._auth_enabled()
        user = self.conf["rbd_user"] or "admin"
        return {"driver_volume_type": "rbd", "data": {
            "name": f"{self.pool}/{name}",
            "hosts": hosts,
            "ports": ports,
            "cluster_name": self.conf["rbd_cluster_name"],
            "auth_enabled": auth_enabled,
            "auth_username": user,
            "secret_type": "ceph",
            "secret_uuid": self.conf["rbd_secret_uuid"],
            "volume_id": volume.id,
            "discard": True,
            "access_mode": connection.mode,
            # For userspace clients (qemu rbd:, librbd) on a host set up like the module's:
            # paths only, never the key itself.
            "ceph_conf": self.conf["rbd_ceph_conf"],
            "keyring_path": self.conf["rbd_keyring_conf"],
        }}

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        """Nothing to undo: an rbd export is only information about the image."""

    # backend ------------------------------------------------------------
    def _df(self) -> tuple[Any, Any, int]:
        """(total, free) in GiB from the cluster's df report, or 'unknown', and the pool's quota."""
        cluster = self._connect()[0]
        ret, out, _err = cluster.mon_command(json.dumps({"prefix": "df", "format": "json"}), b"")
        if ret:
            return "unknown", "unknown", 0
        pools = [p for p in json.loads(out).get("pools", []) if p.get("name") == self.pool]
        if not pools:  # no ceph-mgr has reported yet
            return "unknown", "unknown", 0
        stats = pools[0]["stats"]
        ret, out, _err = cluster.mon_command(
            json.dumps({"prefix": "osd pool get-quota", "pool": self.pool, "format": "json"}), b"")
        quota = json.loads(out).get("quota_max_bytes", 0) if not ret else 0
        free = stats["max_avail"]
        if quota:
            free = max(min(quota - stats["bytes_used"], free), 0)
        total = free + stats["bytes_used"]
        return round(total / GiB, 2), round(free / GiB, 2), quota

    def list_volume_ids(self) -> list[str]:
        with self._failing("listing images"):
            names = self._names()
        return sorted(n[len("volume-"):] for n in names
                      if n.startswith("volume-") and not n.endswith(HIDDEN_SUFFIX))

    def list_snapshot_ids(self) -> list[str]:
        found = []
        with self._failing("listing snapshots"):
            for name in self._names():
                if not name.startswith("volume-"):
                    continue
                try:
                    with self._image(name, read_only=True) as image:
                        found += [s[len(USER_SNAP_PREFIX):] for s in self._snap_names(image)
                                  if s.startswith(USER_SNAP_PREFIX)]
                except self._rbd.ImageNotFound:
                    continue  # deleted meanwhile
        return sorted(found)

    def _garbage(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(hidden images, (image, clone-base snapshot)) that no clone uses any more: what an
        interrupted delete or clone leaves behind."""
        images, snaps = [], []
        for name in self._names():
            if not name.startswith("volume-"):
                continue
            try:
                with self._image(name) as image:
                    unused = [s for s in self._snap_names(image) if not self._children(image, s)]
                    used = len(self._snap_names(image)) - len(unused)
            except self._rbd.ImageNotFound:
                continue
            if name.endswith(HIDDEN_SUFFIX) and not used:
                images.append(name)
            snaps += [(name, s) for s in unused if s.startswith(CLONE_BASE_PREFIX)]
        return images, snaps

    def list_leftovers(self) -> list[str]:
        with self._failing("listing images"):
            images, snaps = self._garbage()
        return sorted(images + [f"{name}@{snap}" for name, snap in snaps])

    def _collect_garbage(self) -> None:
        """After an interrupted delete: collect what it did not get to."""
        images, snaps = self._garbage()
        for name, snap in snaps:
            self._collect(self.pool, name, snap)
        for name in images:
            try:
                self._remove_or_hide(name)
            except self._rbd.ImageNotFound:
                continue  # a concurrent task collected it first

    def get_stats(self) -> dict:
        self.check_setup()
        ids = self.list_volume_ids()
        provisioned = 0
        for volume_id in ids:
            try:
                with self._image(self.volume_image(volume_id), read_only=True) as image:
                    provisioned += image.size()
            except self._rbd.ImageNotFound:
                continue  # deleted meanwhile
        total, free, quota = self._df()
        cluster = self._connect()[0]
        return {
            "driver": self.name,
            "total_capacity_gb": total,
            "free_capacity_gb": free,
            "provisioned_capacity_gb": round(provisioned / GiB, 2),
            "volume_count": len(ids),
            "pools": [{"name": self.pool, "total_capacity_gb": total, "free_capacity_gb": free,
                       "quota_gb": round(quota / GiB, 2) if quota else None,
                       "cluster_fsid": cluster.get_fsid(), "cluster_name": self.conf["rbd_cluster_name"]}],
        }
