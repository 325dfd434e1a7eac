# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reverting a volume to one of its snapshots (storage_volume `revert_to`): the plan of it.

A revert (`revert_to`) makes the volume hold one of its snapshots' data again, in place. It is
done, and a re-run changes nothing, when the record says the volume was last reverted to that
snapshot (`reverted_to`) and nothing could have written to it since: no read-write connection
exists (a revert forced under one leaves `reverted_to` empty), and a new read-write connection
clears it (attachments.py). The record is `reverting` while the driver works; a killed or failed
revert leaves it so, and the next run redoes the revert (the snapshot itself is never written).

`Reverting` is a part of volumes.VolumeResource, whose ACTIONS table runs the revert step.
"""

from __future__ import annotations

from .errors import Conflict, InvalidParameter
from .objects import (
    AVAILABLE,
    CONNECTION,
    EXTENDING,
    IN_USE,
    REVERTING,
    SNAPSHOT,
    STALE,
    VOLUME,
    Snapshot,
    Volume,
    is_live,
)
from .plan import Resource, Step


class Reverting(Resource):
    """VolumeResource's plan of a revert (a part of it: its ACTIONS run it)."""

    def _planned_revert(self, existing: Volume) -> Snapshot | None:
        """The snapshot to revert `existing` to, or None when no revert is asked or it is done."""
        ref = self.params.get("revert_to")
        if ref is None and existing.status != REVERTING:
            return None
        if ref is None:  # a revert was interrupted or failed: finish it
            snapshot = self.records.get(SNAPSHOT, existing.reverted_to or "")
            if snapshot is None:
                raise Conflict(f"volume {existing.name!r} was left in status reverting (its data may be partly "
                               "reverted) and the snapshot it was reverted to is gone; give revert_to another of "
                               "its snapshots, or delete it with state: absent", "revert_to")
        elif not isinstance(ref, str) or not ref:
            raise InvalidParameter(f"revert_to: must be the name or id of one of the volume's snapshots, got {ref!r}",
                                   "revert_to")
        else:
            snapshot = self.records.lookup(SNAPSHOT, ref, "revert_to")
        if snapshot.volume_id != existing.id:
            owner = self.records.get(VOLUME, snapshot.volume_id)
            raise Conflict(f"revert_to: snapshot {snapshot.name!r} belongs to volume "
                           f"{owner.name if owner else snapshot.volume_id!r}, not {existing.name!r}; a volume reverts "
                           "only to its own snapshots (a new volume from it: source.snapshot)", "revert_to")
        if snapshot.status != AVAILABLE:
            raise Conflict(f"revert_to: snapshot {snapshot.name!r} is {snapshot.status}; it must be available to "
                           "revert to", "revert_to")
        connections = self._live_connections(existing)
        writers = sorted({c.host for c in connections if c.mode != "ro"})
        if existing.status != REVERTING and existing.reverted_to == snapshot.id and not writers:
            return None  # reverted to it, and nothing could have written to it since
        if existing.status not in (AVAILABLE, IN_USE, EXTENDING, REVERTING):
            raise Conflict(f"revert_to: volume {existing.name!r} is {existing.status}; it must be available or "
                           "in-use to revert", "revert_to")
        if writers and not self.params.get("force"):
            raise Conflict(f"revert_to: volume {existing.name!r} is connected read-write to {', '.join(writers)}; "
                           "detach it first (storage_attachment state: detached), or set force: true to revert "
                           "it under its users (what they cached goes stale)", "revert_to")
        if self.driver is not None and self.driver.copy_freezes_image(existing):
            for conn in connections:
                if conn.device:
                    raise Conflict(f"revert_to: volume {existing.name!r} is a qcow2 image attached on {conn.host} "
                                   f"as {conn.device.get('path')}; detach it first: the revert replaces the image "
                                   "its daemon holds open (force cannot help)", "revert_to")
        return snapshot

    def _live_connections(self, existing: Volume) -> list:
        """The connections that can read or write the volume: not a killed task's, not a stale device's (its export
        was removed by a forced detach)."""
        return [c for c in self.records.find(CONNECTION, volume_id=existing.id) if is_live(c)]

    def _revert_step(self, existing: Volume, target: Volume, snapshot: Snapshot, size: int | None) -> Step:
        """The one step of a revert; it also finishes an interrupted extend or makes a larger size."""
        if size is not None and size < existing.size:
            raise Conflict(f"size: volume {existing.name!r} is {existing.size} GiB; volumes only grow, "
                           f"so {size} GiB is refused (shrinking would lose data)", "size")
        target.size = max(existing.size, size or 0)
        live = [c for c in self.records.find(CONNECTION, volume_id=existing.id) if c.status != STALE]
        target.status = IN_USE if live else AVAILABLE
        # Under a read-write connection, writes can follow at once: the next run reverts again.
        writable = any(c.mode != "ro" for c in live)
        target.reverted_to = None if writable else snapshot.id
        grown = f" and grow it to {target.size} GiB" if target.size > existing.size else ""
        again = " again (the last revert did not finish)" if existing.status == REVERTING else ""
        return Step("revert", target, snapshot,
                    message=f"revert volume {existing.name!r} to snapshot {snapshot.name!r}{again}{grown}")
