# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Group snapshots (storage_snapshot `group` + `volumes`): the plan of one.

A group snapshot is one snapshot record per volume, named `<group>/<volume name>`, each carrying the
group's name in its `group` field (no record kind of its own, so stores and their contract are unchanged).
The members are taken one after the other: that is one point in time only while nothing writes to the
volumes, so a volume attached read-write is refused. All members' records are written (creating) before
the first driver call, so a killed task leaves them visible and the next run finishes them.

`GroupSnapshots` is a part of snapshots.SnapshotResource, whose ACTIONS table runs the steps.
"""

from __future__ import annotations

import copy

from .errors import Conflict, InvalidParameter
from .host_devices import refuse_held_open
from .objects import (
    AVAILABLE,
    CONNECTION,
    CREATING,
    ERROR,
    IN_USE,
    SNAPSHOT,
    STALE,
    VOLUME,
    Snapshot,
    Volume,
    check_name,
)
from .plan import Plan, Resource, Step


def member_name(group: str, volume_name: str) -> str:
    """The name of a group snapshot's member: the group's name, a slash, the volume's name."""
    return check_name(f"{group}/{volume_name}", "group")


def check_volumes(value: object) -> list[str]:
    """The task's `volumes` option (a group snapshot's volumes), checked."""
    if not isinstance(value, list) or not value:
        raise InvalidParameter("volumes: required with group, a non-empty list of volume names or ids", "volumes")
    for ref in value:
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidParameter(f"volumes: {ref!r} is not a volume name or id", "volumes")
    return value


class GroupSnapshots(Resource):
    """SnapshotResource's plan of a group snapshot (a part of it: its ACTIONS run the steps)."""

    # The group snapshot of the last plan (None: a task on one snapshot).
    group: str | None = None

    def _plan_change(self, existing: Snapshot, name: str | None, volume_ref: str | None) -> Plan:
        """The plan of a task on one existing snapshot (SnapshotResource's)."""
        raise NotImplementedError

    def _new_snapshot(self, name: str, volume: Volume, snapshot_id: str | None, group: str = "") -> Snapshot:
        return Snapshot(
            id=snapshot_id or self._next_id(), name=name, backend=self.records.backend, volume_id=volume.id,
            volume_size=volume.size, status=AVAILABLE, description=self.params.get("description") or "",
            metadata=copy.deepcopy(self.params.get("metadata") or {}), group=group)

    def _plan_group(self) -> Plan:
        """A group snapshot: one member snapshot per volume, taken while nothing writes to any of them."""
        group = check_name(self.params["group"], "group")
        for option in ("name", "id", "volume", "retention"):
            if self.params.get(option) is not None:
                raise InvalidParameter(f"{option}: not with group (a group snapshot's members are named "
                                       f"<group>/<volume name>; give its volumes with volumes)", option)
        state = self.params.get("state", "present")
        if state not in ("present", "absent"):
            raise InvalidParameter(f"state: {state!r} is not one of present, absent", "state")
        self.group = group
        members = sorted(self.records.find(SNAPSHOT, group=group), key=lambda s: (s.name, s.id))
        before = self._group_view(group, members) if members else None
        if state == "absent":
            steps = [Step("delete_snapshot", s, message=f"delete snapshot {s.name!r} ({s.id}) of group {group!r}")
                     for s in members]
            return Plan(steps, before, None)
        volumes: list[Volume] = []
        for ref in check_volumes(self.params.get("volumes")):
            volume = self.records.lookup(VOLUME, ref, "volumes")
            if volume.id in {v.id for v in volumes}:
                raise InvalidParameter(f"volumes: {volume.name!r} is listed twice", "volumes")
            volumes.append(volume)
        if members:
            have = {s.volume_id for s in members}
            want = {v.id for v in volumes}
            if have != want:
                names = sorted(repr(self._volume_name(i)) for i in have)
                raise Conflict(f"volumes: group snapshot {group!r} holds snapshots of {', '.join(names)}, not of "
                               "the volumes listed; a group snapshot keeps the volumes it was taken of. Delete it "
                               "(group with state: absent) and take it again", "volumes")
            steps: list[Step] = []
            targets = []
            for member in members:
                if member.status in (CREATING, ERROR):  # finishing it takes the volume as it is now
                    self._refuse_writer(next(v for v in volumes if v.id == member.volume_id), group)
                plan = self._plan_change(member, None, None)
                steps += plan.steps
                targets.append(plan.steps[-1].target if plan.steps else member)
            return Plan(steps, before, self._group_view(group, targets) if steps else before)
        for volume in volumes:
            self._refuse_writer(volume, group)
            holder = self.records.lookup(SNAPSHOT, member_name(group, volume.name), "group", required=False)
            if holder is not None:
                raise Conflict(f"group: snapshot {holder.name!r} ({holder.id}) exists and is not a member of group "
                               f"snapshot {group!r}; choose another group name", "group")
        if self.on_host and self.driver is not None:  # before the first member, in check mode too
            self.driver.refuse_snapshots_without_room(volumes, f"group snapshot {group!r} of "
                                                               f"{', '.join(repr(v.name) for v in volumes)}")
        steps = []
        for volume in volumes:
            snapshot = self._new_snapshot(member_name(group, volume.name), volume, None, group)
            steps.append(Step("create_snapshot", snapshot, volume,
                              message=f"create snapshot {snapshot.name!r} of volume {volume.name!r} "
                                      f"(group {group!r})"))
        return Plan(steps, None, self._group_view(group, [s.target for s in steps]))

    def _refuse_writer(self, volume: Volume, group: str) -> None:
        """Members are taken one after the other: consistent only while nothing writes to any volume."""
        refuse_held_open(self.driver, self.records, volume, "snapshot", "volumes")
        for conn in self.records.find(CONNECTION, volume_id=volume.id):
            # A stale record's export is gone (its host was force-detached); a killed attach's may still write.
            if conn.mode != "ro" and conn.status != STALE:
                raise Conflict(f"volumes: volume {volume.name!r} is attached read-write to {conn.host}; group "
                               f"snapshot {group!r} is taken of volumes nothing writes to (each member is taken "
                               "in turn). Detach it (or attach it read-only) first, or snapshot it alone with "
                               "volume and name", "volumes")
        if volume.status not in (AVAILABLE, IN_USE):
            raise Conflict(f"volumes: {volume.name!r} is {volume.status}; it must be available or in-use "
                           "to take a snapshot", "volumes")

    def _volume_name(self, volume_id: str) -> str:
        volume = self.records.get(VOLUME, volume_id)
        return volume.name if volume is not None else volume_id

    def _group_view(self, group: str, members: list[Snapshot]) -> dict:
        return {"name": group, "volumes": [self._volume_name(s.volume_id) for s in members],
                "snapshots": [self.view(s) for s in members]}

    def backend_confirms(self, plan: Plan) -> bool:
        if self.group is None:
            return super().backend_confirms(plan)
        # A group with nothing to do is checked member by member where the module runs, unless the
        # task chose the store's answer (no probe).
        return self.driver is None or self.driver.probe_on_host is None

    def group_result(self, plan: Plan) -> dict:
        """What a group task returns: the group (members as stored once executed), and its diff."""
        after = plan.after
        if after is not None and self.executed:
            stored = [self.records.get(SNAPSHOT, s["id"]) for s in after["snapshots"]]
            after = self._group_view(self.group, [s for s in stored if s is not None])
        shown = after if after is not None else (dict(plan.before, status="deleted") if plan.before else None)
        return {"changed": plan.changed, "actions": [s.message for s in plan.steps], "snapshot": None,
                "group_snapshot": shown, "diff": {"before": plan.before or {}, "after": plan.after or {}}}
