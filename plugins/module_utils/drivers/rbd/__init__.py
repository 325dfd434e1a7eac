# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `rbd` driver: volumes as Ceph RBD images, through librbd's Python bindings.

Options carry the names Cinder's RBD driver gives them, so a cinder.conf backend
section carries over. Images are named by id, never by a user's name:

  volume-<id>                    a volume
  volume-<id>@snapshot-<id>      a snapshot: an RBD snapshot of its volume's image
  volume-<src>@clone-base-<id>   private snapshot of the source of clone <id>
  volume-<src>@volume-<id>.clone_snap   the same, made by Cinder's RBD driver (volumes imported
                                 from cinderlib): it goes with its last clone as ours do
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

import os
from typing import Any

from ...config import Opt
from ...errors import DriverError, InvalidParameter
from ...objects import RESUMED_DELETE, Connection, Snapshot, Volume, is_uuid
from ...units import GiB
from ...volume_types import qos_of, with_front_end_qos
from ..base import Driver
from .cluster import LIBRADOS_MOUNT_TIMEOUT, ClusterConnection
from .images import CLONE_BASE_PREFIX, HIDDEN_SUFFIX, USER_SNAP_PREFIX, ImageChains
from .qemu_image import QemuImages


class RbdDriver(QemuImages, ImageChains, ClusterConnection, Driver):
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
    # Ceph clusters are mostly all named "ceph": the configuration file tells two of them apart.
    locating_options = ("rbd_pool", "rbd_cluster_name", "rbd_ceph_conf")
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

    # librbd's image-level QoS settings (image metadata `conf_<setting>`), by Cinder's front-end key: every
    # librbd client (qemu, rbd-nbd, qemu-storage-daemon) opening the image obeys them.
    QOS_METADATA = {"total_iops_sec": "conf_rbd_qos_iops_limit", "read_iops_sec": "conf_rbd_qos_read_iops_limit",
                    "write_iops_sec": "conf_rbd_qos_write_iops_limit", "total_bytes_sec": "conf_rbd_qos_bps_limit",
                    "read_bytes_sec": "conf_rbd_qos_read_bps_limit", "write_bytes_sec": "conf_rbd_qos_write_bps_limit"}
    qos_change = "backend"

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

    # volume types, QoS, pool ------------------------------------------
    def check_spec(self, spec: dict | None, pool: str | None) -> None:
        if pool is not None and pool != self.pool:
            raise InvalidParameter(f"pool: driver 'rbd' places volumes in its backend's rbd_pool {self.pool!r} only; "
                                   f"{pool!r} is refused (define another backend for that pool)", "pool")
        # QoS is honoured (image metadata); extra specs are refused as every driver does.
        super().check_spec({k: v for k, v in (spec or {}).items() if k != "qos_specs"}, None)

    def default_pool(self) -> str | None:
        return self.pool

    def change_qos(self, volume: Volume) -> dict:
        self._apply_qos(self.volume_image(volume.id), volume)
        return volume.driver_data

    def _apply_qos(self, name: str, volume: Volume) -> None:
        """Exactly the volume's limits on its image: the others removed (a clone inherits its parent's)."""
        wanted = {self.QOS_METADATA[k]: str(v) for k, v in qos_of(volume.volume_type).items()}
        with self._failing(f"setting the QoS metadata of image {name}"), self._image(name) as image:
            present = dict(image.metadata_list())
            for key in self.QOS_METADATA.values():
                if key in wanted and present.get(key) != wanted[key]:
                    image.metadata_set(key, wanted[key])
                elif key not in wanted and key in present:
                    image.metadata_remove(key)

    # volumes --------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        name = self.volume_image(volume.id)
        with self._failing(f"creating image {name} of {volume.size} GiB"):
            self._remove_leftover(name)
            ioctx = self._connect()[1]
            self._rbd.RBD().create(ioctx, name, volume.size * GiB, old_format=False)
        self._apply_qos(name, volume)
        return self._driver_data(name)

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
        self._apply_qos(name, volume)
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
        self._apply_qos(name, volume)
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

    def inspect_volume(self, volume: Volume) -> dict:
        name = self.volume_image(volume.id)
        found = {"object": f"{self.pool}/{name}", "exists": False}
        with self._failing(f"reading image {name}"):
            try:
                with self._image(name, read_only=True) as image:
                    return dict(found, exists=True, size=image.size())
            except self._rbd.ImageNotFound:
                return found

    def allocated_bytes(self, volume: Volume) -> int | None:
        # What `rbd du` counts: the extents the image itself holds, not its parent's.
        name = self.volume_image(volume.id)
        used = [0]

        def count(offset: int, length: int, exists: bool) -> None:
            if exists:
                used[0] += length
        with self._failing(f"reading the allocation of image {name}"):
            if not self._exists(name):
                return None
            with self._image(name, read_only=True) as image:
                image.diff_iterate(0, image.size(), None, count, include_parent=False)
        return used[0]

    def find_existing(self, name: str) -> dict | None:
        if name.startswith(CLONE_BASE_PREFIX) or name.endswith(HIDDEN_SUFFIX):
            raise DriverError(f"source.existing: {self.pool}/{name} is an internal image of this backend, not a "
                              "volume", "source.existing")
        with self._failing(f"reading image {name}"):
            try:
                with self._image(name, read_only=True) as image:
                    snaps, size = self._snap_names(image), image.size()
                    try:
                        parent = image.parent_info()
                    except self._rbd.ImageNotFound:
                        parent = None
            except self._rbd.ImageNotFound:
                return None
        # The store would know neither its snapshots nor its parent: a delete could not undo them in order.
        if snaps:
            raise DriverError(f"source.existing: image {self.pool}/{name} has snapshots ({', '.join(snaps)}) that "
                              "no record knows; remove them (rbd snap purge) or copy the image first",
                              "source.existing")
        if parent:
            raise DriverError(f"source.existing: image {self.pool}/{name} is a clone of "
                              f"{parent[0]}/{parent[1]}@{parent[2]}; flatten it first (rbd flatten)",
                              "source.existing")
        return {"object": f"{self.pool}/{name}", "size": size}

    def adopt_volume(self, volume: Volume, name: str) -> dict:
        image = self.volume_image(volume.id)
        if name != image:
            with self._failing(f"renaming image {name} to {image}"):
                self._rbd.RBD().rename(self._connect()[1], name, image)
        return self._driver_data(image)

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

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        self._errors()
        try:
            with self._image(self.volume_image(snapshot.volume_id), read_only=True) as image:
                return self.snapshot_name(snapshot) in self._snap_names(image)
        except self._rbd.ImageNotFound:
            return False

    # connections ----------------------------------------------------
    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        name = self.volume_image(volume.id)
        with self._failing(f"exporting image {name}"):
            if not self._exists(name):
                raise DriverError(f"rbd driver: the image {self.pool}/{name} is missing from the pool")
            hosts, ports = self._monitors()
            auth_enabled = self._auth_enabled()
        user = self.conf["rbd_user"] or "admin"
        # The QoS in the image's metadata binds librbd clients only (krbd ignores it): in the connection info too,
        # the kernel path is refused and qemu-storage-daemon enforces it.
        return with_front_end_qos({"driver_volume_type": "rbd", "data": {
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
        }}, volume.volume_type)

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        """Nothing to undo: an rbd export is only information about the image."""

    # backend --------------------------------------------------------
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

    def list_leftovers(self) -> list[str]:
        with self._failing("listing images"):
            images, snaps = self._garbage()
        return sorted(images + [f"{name}@{snap}" for name, snap in snaps])

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
