# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lvm driver's revert to a snapshot: a swap for thin volumes, a merge for thick ones.

Thin: a thin snapshot of the snapshot (`volume-<id>.revert`) takes the volume's name, the
old LV (renamed `volume-<id>.old`) is removed; each step is seen in the LV names, so a
killed revert is finished by the next. Thick: `lvconvert --merge` consumes the snapshot
(LVM merges at once only into an origin that is not open; it would otherwise wait for the
next activation), then the snapshot is made again from the reverted volume: same data.
"""

from __future__ import annotations

from typing import Any

from ...errors import Conflict, DriverError
from ...objects import Snapshot, Volume
from .lvm import is_open, is_thin

REVERT_SUFFIXES = (".revert", ".old")


def revert(driver: Any, volume: Volume, snapshot: Snapshot) -> None:
    """Make `volume` (an LvmDriver's) hold `snapshot`'s data again, keeping its size."""
    lvm = driver.lvm
    lv, snap = driver.volume_lv(volume.id), driver.snapshot_lv(snapshot)
    old, new = lv + REVERT_SUFFIXES[1], lv + REVERT_SUFFIXES[0]
    lvs = lvm.lvs()
    if old not in lvs:  # else a killed thin revert's swap is under way: finish it
        row = lvs.get(lv)
        if row is None:
            raise DriverError(f"lvm driver: volume {volume.name!r}'s LV {lvm.vg}/{lv} is missing", "revert_to")
        if snap not in lvs:
            raise DriverError(f"lvm driver: snapshot {snapshot.name!r}'s LV {lvm.vg}/{snap} is missing", "revert_to")
        if is_open(row):
            raise Conflict(f"revert_to: volume {volume.name!r}'s LV {lvm.vg}/{lv} is open (attached, mounted or "
                           "exported); detach it first, nothing was changed", "revert_to")
        if not is_thin(row):
            lvm.merge(snap)
            lvm.snapshot(lv, snap, row["lv_size"])
            return
        if new in lvs:
            lvm.remove(new)
        lvm.snapshot(snap, new, None)
        lvm.rename(lv, old)
    if lvm.lv(lv) is None:
        lvm.rename(new, lv)
    lvm.remove(old)
    size = driver._size(volume.size)
    if lvm.lv(lv)["lv_size"] < size:
        lvm.extend(lv, size)
