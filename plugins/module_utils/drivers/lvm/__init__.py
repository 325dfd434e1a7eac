# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `lvm` driver: volumes as logical volumes of one LVM volume group, thick or thin.

Options carry the names Cinder's LVM driver gives them (volume_group, lvm_type, volume_clear, volume_clear_size), so
a cinder.conf backend section carries over. LVs are named by id, never by a user's name, as Cinder names them:

  volume-<id>            a volume
  _snapshot-<id>         a snapshot (LVM refuses LV names that begin with "snapshot")
  <volume_group>-pool    the thin pool of lvm_type thin: made by the admin, never by this driver
  clone-base-<id>        a thick clone's temporary snapshot of its source, gone when the copy is made
  volume-<id>.revert, volume-<id>.old   the two halves of a thin revert, gone when it is done

What each operation does:

  create       thick: an LV of the size rounded up to whole extents, after checking the volume group's free extents;
               thin: a thin LV in <volume_group>-pool (lvm_type auto: thin when that pool exists, else thick). Later
               operations follow the volume's own kind.
  snapshot     thin: a thin snapshot (constant time, shares all blocks); thick: a copy-on-write snapshot whose COW
               area is as large as the volume, as Cinder sizes it, so it can never fill up and be invalidated
               however much the volume is rewritten; a group snapshot's thick members must fit all together.
  clone, volume from snapshot
               thin: a thin snapshot of the source, extended when larger (constant time); thick: a new LV and a full
               copy with dd (a clone copies from a temporary COW snapshot, so a volume in use is copied at one
               instant); time grows with the size.
  extend       lvextend (thick: checked against the free extents first; a thick volume with snapshots is deactivated
               around it, as LVM requires, so it must not be open); an iSCSI export re-reads the size.
  revert       thin: a thin snapshot of the snapshot takes the volume's name and the old LV is removed (constant
               time); thick: lvconvert --merge, which needs the volume not open (not attached, mounted or exported:
               refused otherwise), then the snapshot is made again, holding the same data. Both refuse a volume
               whose LV is open.
  delete       lvremove; a thick volume is first overwritten with zeros (volume_clear zero, the first
               volume_clear_size MiB, 0: all of it), as Cinder does, since a new LV could otherwise read its data.
               Thin LVs are not cleared: the pool zeroes new blocks. Snapshots do not depend on volumes made from
               them (thick: copies; thin: LVM's thin snapshots are independent), so they are deleted in any order.

Exports: `target: local` gives the LV's device path (attached on the storage host itself); `target: iscsi` serves it
through tgt as the file driver serves a raw file (a target per connection, its host's initiator and CHAP account only).

Stats come from the volume group (vgs) and, for thin, the pool's size and data percent; the allocated bytes of a
thin volume are its size times its data percent. The drift check lists the volume-* and _snapshot-* LVs;
source.existing takes over another LV of the group (renamed to volume-<id>) unless it is a snapshot, has snapshots,
or is a thin pool.
"""

from __future__ import annotations

import os
import re

from ...config import Opt
from ...errors import Conflict, DriverError, InvalidParameter
from ...objects import Connection, Snapshot, Volume
from ...units import GiB
from ..base import Driver
from ..file.export import ISCSI_OPTIONS, IscsiExport
from .lvm import Lvm, data_percent, extents_for, is_active, is_open, is_thin, virtual_size
from .revert import REVERT_SUFFIXES, revert

_MiB = 1024 ** 2
# What LVM accepts in a VG name (and what keeps /dev/<vg>/ one path component).
_VG_NAME = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
SNAP_PREFIX = "_snapshot-"
CLONE_BASE_PREFIX = "clone-base-"


class _Raw:
    """What IscsiExport asks of a volume's format: an LV is a raw block device."""
    name = "raw"
    targets = ("local", "iscsi")


class LvmDriver(IscsiExport, Driver):
    name = "lvm"
    options = (
        Opt("volume_group", default="cinder-volumes",
            help="The LVM volume group holding the volumes, on the host the module runs on. It must exist."),
        Opt("lvm_type", default="default", choices=("default", "thin", "auto"),
            help="default: thick LVs; thin: thin LVs in the thin pool <volume_group>-pool, which must exist; "
                 "auto: thin when that pool exists, else thick."),
        Opt("volume_clear", default="zero", choices=("zero", "none"),
            help="How a thick volume's data is cleared before its LV is removed: zero overwrites it with zeros; "
                 "none leaves it to the next LV that gets those extents. Thin volumes are never cleared."),
        Opt("volume_clear_size", "int", default=0, min=0,
            help="MiB cleared from the start of a thick volume (volume_clear zero); 0 clears all of it."),
        Opt("target", default="local", choices=("local", "iscsi"),
            help="How volumes are exported. local: the LV's device path, attached on this host; iscsi: the userspace "
                 "target tgt on this host, a target per connection with that host's initiator and CHAP account only."),
        *ISCSI_OPTIONS,
    )
    locating_options = ("volume_group",)
    capabilities = {
        "formats": ["raw"],
        "thin_provisioning": "with lvm_type thin (or auto and a <volume_group>-pool thin pool)",
        "snapshot": "thin: thin snapshot (constant time); thick: COW snapshot LV as large as the volume",
        "clone": "thin: thin snapshot of the source (constant time); thick: full copy (dd) from a temporary snapshot",
        "volume_from_snapshot": "thin: thin snapshot of the snapshot (constant time); thick: full copy (dd)",
        "snapshot_delete_with_dependents": "allowed: volumes made from a snapshot do not depend on it",
        "revert_to_snapshot": "thin: the volume becomes a thin snapshot of the snapshot (constant time); thick: "
                              "lvconvert --merge, then the snapshot is made again; the volume must not be open",
        "multiattach": True,
        "connection_types": {"local": "the LV's device path (on the storage host)",
                             "iscsi": "tgt target per connection (its host's initiator and CHAP account only)"},
        "capacity_stats": "from the volume group (vgs), and the thin pool's size and data percent",
    }

    def __init__(self, backend_name: str, conf: dict) -> None:
        super().__init__(backend_name, conf)
        vg = conf["volume_group"]
        if not _VG_NAME.match(vg):
            raise InvalidParameter(f"backend.volume_group: {vg!r} is not a volume group name (letters, digits and "
                                   "+_.-, not starting with -)", "backend.volume_group")
        self.vg = vg
        self.pool = f"{vg}-pool"  # Cinder's name for the group's thin pool
        self.lvm = Lvm(vg)

    # set-up -------------------------------------------------------------
    def _vg(self) -> dict:
        found = self.lvm.vg_report()
        if found is None:
            names = self.lvm.vg_names()
            raise DriverError(f"backend.volume_group: no volume group {self.vg!r} on this host (found: "
                              f"{', '.join(names) or 'none'}); create it (vgcreate {self.vg} DEVICE...)",
                              "backend.volume_group")
        return found

    def _pool_row(self, lvs: dict) -> dict | None:
        row = lvs.get(self.pool)
        return row if row and row.get("segtype") == "thin-pool" else None

    def check_setup(self) -> None:
        self._vg()
        if self.conf["lvm_type"] == "thin" and self._pool_row(self.lvm.lvs()) is None:
            raise DriverError(f"backend.lvm_type: thin needs the thin pool {self.vg}/{self.pool}, which does not "
                              f"exist; create it (lvcreate -T -l 90%FREE {self.vg}/{self.pool}) or use lvm_type "
                              "default", "backend.lvm_type")

    def _new_pool(self) -> str | None:
        """The thin pool new volumes go to; None: thick."""
        if self.conf["lvm_type"] == "default":
            return None
        found = self._pool_row(self.lvm.lvs())
        if found is None and self.conf["lvm_type"] == "thin":
            self.check_setup()  # raises, naming lvm_type
        return self.pool if found else None

    def _need_extents(self, size_bytes: int, what: str) -> None:
        """Refuse, before any change, a thick allocation the volume group has no room for."""
        vg = self._vg()
        extent = vg["vg_extent_size"]
        needed = extents_for(size_bytes, extent)
        if needed > vg["vg_free_count"]:
            raise DriverError(f"backend.volume_group: {what} needs {needed} extents ({needed * extent / GiB:.2f} "
                              f"GiB) and volume group {self.vg!r} has {vg['vg_free_count']} free "
                              f"({vg['vg_free_count'] * extent / GiB:.2f} GiB); nothing was changed",
                              "backend.volume_group")

    # names --------------------------------------------------------------
    @staticmethod
    def volume_lv(volume_id: str) -> str:
        return f"volume-{volume_id}"

    @staticmethod
    def snapshot_lv(snapshot: Snapshot) -> str:
        return f"{SNAP_PREFIX}{snapshot.id}"

    def volume_path(self, volume: Volume) -> str:
        return self.lvm.path(self.volume_lv(volume.id))

    def file(self, name: str) -> str:
        """The device path of LV `name` (IscsiExport finds a target's volume by this prefix)."""
        return self.lvm.path(name)

    def format_of(self, obj: Volume | Snapshot) -> _Raw:
        return _Raw()

    def _row(self, lv: str, what: str, option: str | None = None) -> dict:
        row = self.lvm.lv(lv)
        if row is None:
            raise DriverError(f"lvm driver: {what} LV {self.vg}/{lv} is missing", option)
        return row

    def _size(self, gib: int) -> int:
        """`gib` in bytes, rounded up to whole extents as LVM allocates them."""
        extent = self._vg()["vg_extent_size"]
        return extents_for(gib * GiB, extent) * extent

    def _data(self, lv: str, thin: bool) -> dict:
        return {"volume_group": self.vg, "lv": lv, "lvm_type": "thin" if thin else "thick"}

    def _fresh(self, lv: str) -> None:
        """Remove what a killed create left under this name: only ever called for a record still 'creating'."""
        if self.lvm.lv(lv) is not None:
            self.lvm.remove(lv)

    # volumes ------------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        lv = self.volume_lv(volume.id)
        pool = self._new_pool()
        size = self._size(volume.size)
        if pool is None:
            self._need_extents(size, f"volume {volume.name!r}")
        self._fresh(lv)
        self.lvm.create(lv, size, pool)
        return self._data(lv, pool is not None)

    def _copy_of(self, volume: Volume, source_lv: str, what: str) -> dict:
        """A new volume from `source_lv`: a thin snapshot of a thin source, else a thick LV and a copy."""
        lv = self.volume_lv(volume.id)
        source = self._row(source_lv, what)
        size = max(self._size(volume.size), virtual_size(source))
        if is_thin(source):
            self._fresh(lv)
            self.lvm.snapshot(source_lv, lv, None)
            if size > virtual_size(source):
                self.lvm.extend(lv, size)
            return self._data(lv, True)
        self._need_extents(size, f"volume {volume.name!r}")
        self._fresh(lv)
        self.lvm.create(lv, size, None)
        self.lvm.copy(source_lv, lv, virtual_size(source), sparse=False)
        return dict(self._data(lv, False), copied_from=source_lv)

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        return self._copy_of(volume, self.snapshot_lv(snapshot), f"snapshot {snapshot.name!r}'s")

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        source_lv = self.volume_lv(source.id)
        row = self._row(source_lv, f"volume {source.name!r}'s")
        if is_thin(row):
            return self._copy_of(volume, source_lv, f"volume {source.name!r}'s"), source.driver_data
        # Thick: copied from a snapshot of one instant; room for both checked before either is made.
        base = f"{CLONE_BASE_PREFIX}{volume.id}"
        self._need_extents(max(self._size(volume.size), row["lv_size"]) + row["lv_size"],
                           f"clone {volume.name!r} (with its temporary snapshot)")
        self._fresh(base)
        self.lvm.snapshot(source_lv, base, row["lv_size"])
        try:
            made = self._copy_of(volume, base, "the clone's temporary snapshot")
        finally:
            self.lvm.remove(base)
        return dict(made, copied_from=source_lv), source.driver_data

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        lv = self.volume_lv(volume.id)
        row = self._row(lv, f"volume {volume.name!r}'s")
        size = self._size(new_size)
        if not is_active(row):
            self.lvm.activate(lv, True)  # a killed extend left it inactive (below)
        if size > row["lv_size"] and is_thin(row):
            self.lvm.extend(lv, size)
        elif size > row["lv_size"]:
            self._need_extents(size - row["lv_size"], f"extending volume {volume.name!r}")
            if not any(r.get("origin") == lv for r in self.lvm.lvs().values()):
                self.lvm.extend(lv, size)
            elif is_open(row):
                raise Conflict(f"size: volume {volume.name!r} has snapshots, and LVM extends a thick LV with "
                               "snapshots only while it is inactive; it is open (attached, mounted or exported): "
                               "detach it first, nothing was changed", "size")
            else:
                self.lvm.activate(lv, False)  # its snapshots go inactive with it, and come back with it
                self.lvm.extend(lv, size)
                self.lvm.activate(lv, True)
        if self.conf["target"] == "iscsi":
            self._tgt().refresh(self.volume_path(volume))
        return volume.driver_data or self._data(lv, is_thin(row))

    def delete_volume(self, volume: Volume) -> None:
        lvs = self.lvm.lvs()
        base = f"{CLONE_BASE_PREFIX}{volume.id}"
        for leftover in [base] + [self.volume_lv(volume.id) + s for s in REVERT_SUFFIXES]:
            if leftover in lvs:
                self.lvm.remove(leftover)
        lv = self.volume_lv(volume.id)
        row = lvs.get(lv)
        if row is None:
            return
        if not is_thin(row) and self.conf["volume_clear"] == "zero":
            clear = self.conf["volume_clear_size"] * _MiB or row["lv_size"]
            self.lvm.zero(lv, min(clear, row["lv_size"]))
        self.lvm.remove(lv)

    def volume_exists(self, volume: Volume) -> bool:
        return self.lvm.lv(self.volume_lv(volume.id)) is not None

    def inspect_volume(self, volume: Volume) -> dict:
        row = self.lvm.lv(self.volume_lv(volume.id))
        found = {"object": self.volume_path(volume), "exists": row is not None}
        return dict(found, size=row["lv_size"], format="raw") if row else found

    def allocated_bytes(self, volume: Volume) -> int | None:
        row = self.lvm.lv(self.volume_lv(volume.id))
        if row is None:
            return None
        if not is_thin(row):
            return row["lv_size"]
        percent = data_percent(row)
        return None if percent is None else int(row["lv_size"] * percent / 100)

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        revert(self, volume, snapshot)
        return volume.driver_data

    # adopting -----------------------------------------------------------
    def find_existing(self, name: str) -> dict | None:
        lvs = self.lvm.lvs()
        row = lvs.get(name)
        if row is None:
            return None
        if row.get("origin") or row.get("segtype") in ("thin-pool", "snapshot"):
            raise DriverError(f"source.existing: LV {self.vg}/{name} is a snapshot or a thin pool, not a volume",
                              "source.existing")
        snaps = sorted(n for n, r in lvs.items() if r.get("origin") == name)
        if snaps:
            raise DriverError(f"source.existing: LV {self.vg}/{name} has snapshots ({', '.join(snaps)}) that no "
                              "record knows; remove them first", "source.existing")
        return {"object": self.lvm.path(name), "size": row["lv_size"], "format": "raw"}

    def adopt_volume(self, volume: Volume, name: str) -> dict:
        lv = self.volume_lv(volume.id)
        if name != lv:
            self.lvm.rename(name, lv)
        return self._data(lv, is_thin(self._row(lv, f"volume {volume.name!r}'s")))

    # snapshots ----------------------------------------------------------
    def refuse_snapshots_without_room(self, volumes: list[Volume], what: str) -> None:
        """A group's thick snapshots (each as large as its volume) are refused before any unless all fit."""
        rows = [self._row(self.volume_lv(v.id), f"volume {v.name!r}'s") for v in volumes]
        if any(not is_thin(r) for r in rows):
            self._need_extents(sum(r["lv_size"] for r in rows if not is_thin(r)), what)

    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        lv, snap = self.volume_lv(volume.id), self.snapshot_lv(snapshot)
        row = self._row(lv, f"volume {volume.name!r}'s")
        cow = None if is_thin(row) else row["lv_size"]
        if cow is not None:
            self._need_extents(cow, f"snapshot {snapshot.name!r}")
        self._fresh(snap)
        self.lvm.snapshot(lv, snap, cow)
        return {"volume_group": self.vg, "lv": snap, "lvm_type": "thin" if cow is None else "thick"}, \
            volume.driver_data

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        if self.lvm.lv(self.snapshot_lv(snapshot)) is not None:
            self.lvm.remove(self.snapshot_lv(snapshot))

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        return self.lvm.lv(self.snapshot_lv(snapshot)) is not None

    def inspect_snapshot(self, snapshot: Snapshot) -> dict:
        return {"object": self.lvm.path(self.snapshot_lv(snapshot)), "exists": self.snapshot_exists(snapshot)}

    def volumes_share_snapshot_data(self, snapshot: Snapshot) -> bool:
        return False  # thick: copies; thin: LVM's thin snapshots do not depend on their origin

    # connections --------------------------------------------------------
    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        if not os.path.exists(self.volume_path(volume)):
            raise DriverError(f"lvm driver: volume {volume.name!r}'s LV {self.volume_path(volume)} is missing or "
                              "inactive (lvchange -ay)")
        return super().initialize_connection(volume, connection)

    # backend ------------------------------------------------------------
    def _ids(self, prefix: str) -> list[str]:
        return sorted(n[len(prefix):] for n in self.lvm.lvs()
                      if n.startswith(prefix) and not n.endswith(REVERT_SUFFIXES))

    def list_volume_ids(self) -> list[str]:
        return self._ids("volume-")

    def list_snapshot_ids(self) -> list[str]:
        return self._ids(SNAP_PREFIX)

    def list_leftovers(self) -> list[str]:
        return sorted(n for n in self.lvm.lvs()
                      if n.startswith(CLONE_BASE_PREFIX) or (n.startswith("volume-") and n.endswith(REVERT_SUFFIXES)))

    def get_stats(self) -> dict:
        vg = self._vg()
        lvs = self.lvm.lvs()
        volumes = [r for n, r in lvs.items() if n.startswith("volume-") and not n.endswith(REVERT_SUFFIXES)]
        total, free = vg["vg_size"] / GiB, vg["vg_free"] / GiB
        pool = {"name": self.vg, "total_capacity_gb": round(total, 2), "free_capacity_gb": round(free, 2),
                "extent_size": vg["vg_extent_size"], "lvm_type": self.conf["lvm_type"]}
        thin = self._pool_row(lvs)
        if thin is not None and self.conf["lvm_type"] != "default":
            # Thin volumes take room from the pool, not the group: its free space is what they can still write.
            used = (data_percent(thin) or 0.0) / 100
            total = thin["lv_size"] / GiB
            free = total * (1 - used)
            pool.update(thin_pool=self.pool, thin_pool_total_gb=round(total, 2), thin_pool_free_gb=round(free, 2))
        return {
            "driver": self.name,
            "total_capacity_gb": round(total, 2),
            "free_capacity_gb": round(free, 2),
            "provisioned_capacity_gb": round(sum(r["lv_size"] for r in volumes) / GiB, 2),
            "volume_count": len(volumes),
            "pools": [pool],
        }
