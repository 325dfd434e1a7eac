# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots (storage_snapshot): create one of a volume, update, delete.

The plan is made by plan.Resource's engine; this file says which steps a snapshot task
has (`SnapshotResource.ACTIONS`) and how each runs on the driver.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar

from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .host_devices import refuse_held_open
from .objects import AVAILABLE, CONNECTION, CREATING, DELETING, ERROR, IN_USE, SNAPSHOT, VOLUME, Snapshot
from .plan import Action, Plan, Resource, Step, by_ref, half_made, is_missing, made_from_source, store_target

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store


# steps (the table is SnapshotResource.ACTIONS) ---------------------------------
def _create_snapshot(resource: Resource, step: Step, driver: Driver) -> None:
    half_made(driver, step.target, step.source)
    made_from_source(resource, step, driver.create_snapshot(step.target, step.source))


def delete_snapshot(resource: Resource, step: Step, driver: Driver) -> None:
    half_made(driver, step.target, resource.records.get(VOLUME, step.target.volume_id))
    driver.delete_snapshot(step.target)


def _undo_snapshot(driver: Driver, snapshot: Snapshot) -> None:
    driver.delete_snapshot(snapshot)


class SnapshotResource(Resource):
    kind = SNAPSHOT
    result_key = "snapshot"
    noop_on_controller = True
    # Drivers such as Cinder's read the volume's model (credentials included) to snapshot it.
    needs_secrets = True
    ACTIONS: ClassVar[dict[str, Action]] = {
        "create_snapshot": Action(_create_snapshot, pending=CREATING, creates=True, undo=_undo_snapshot),
        "delete_snapshot": Action(delete_snapshot, pending=DELETING, deletes=True),
        "update": Action(store_target),
    }

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {VOLUME: [params.get("volume")], SNAPSHOT: [params.get("name")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        found = by_ref(store, backend, SNAPSHOT, params.get("id")) + by_ref(
            store, backend, SNAPSHOT, params.get("name"))
        found += [v for s in found for v in store.find(backend, VOLUME, id=s["volume_id"])]
        found += by_ref(store, backend, VOLUME, params.get("volume"))
        found += [c for v in found if v["kind"] == VOLUME for c in store.find(backend, CONNECTION, volume_id=v["id"])]
        return list({r["id"]: r for r in found}.values())

    def make_plan(self) -> Plan:
        name, snapshot_id = self._identity()
        existing = self._existing(name, snapshot_id)
        volume_ref = self.params.get("volume")
        if volume_ref is not None and (not isinstance(volume_ref, str) or not volume_ref):
            raise InvalidParameter("volume: must be a volume name or id", "volume")
        if self.params.get("state", "present") == "absent":
            if existing is None:
                return Plan([], None, None)
            step = Step("delete_snapshot", existing, message=f"delete snapshot {existing.name!r} ({existing.id})")
            return Plan([step], self.view(existing), None)
        if existing is not None:
            return self._plan_change(existing, name, volume_ref)
        if name is None:
            raise NotFound(f"id: no snapshot {snapshot_id} on backend {self.records.backend!r}; give a name "
                           "and a volume to create one", "id")
        if volume_ref is None:
            raise InvalidParameter(f"volume: required to create snapshot {name!r}", "volume")
        volume = self.records.lookup(VOLUME, volume_ref, "volume")
        refuse_held_open(self.driver, self.records, volume, "snapshot", "volume")
        if volume.status not in (AVAILABLE, IN_USE):
            raise Conflict(f"volume: {volume.name!r} is {volume.status}; it must be available or in-use "
                           "to take a snapshot", "volume")
        snapshot = Snapshot(
            id=snapshot_id or self._next_id(), name=name, backend=self.records.backend, volume_id=volume.id,
            volume_size=volume.size, status=AVAILABLE, description=self.params.get("description") or "",
            metadata=copy.deepcopy(self.params.get("metadata") or {}))
        step = Step("create_snapshot", snapshot, volume,
                    message=f"create snapshot {name!r} of volume {volume.name!r}")
        return Plan([step], None, self.view(snapshot))

    def _plan_change(self, existing: Snapshot, name: str | None, volume_ref: str | None) -> Plan:
        self._refuse_half_deleted(existing)
        if volume_ref is not None:
            volume = self.records.lookup(VOLUME, volume_ref, "volume", required=False)
            if volume is None or volume.id != existing.volume_id:
                raise Conflict(f"name: snapshot {existing.name!r} exists but belongs to volume "
                               f"{existing.volume_id}, not {volume_ref!r}; snapshot names are unique per "
                               "backend", "name")
        target = copy.deepcopy(existing)
        steps: list[Step] = []
        checked = []
        if self.verifies_backend() and (existing.status == AVAILABLE or is_missing(existing)):
            checked = self.check_on_backend(existing, target, self.driver.inspect_snapshot(existing))
        if existing.status in (CREATING, ERROR) and not is_missing(existing):
            volume = self.records.get(VOLUME, existing.volume_id)
            if volume is None:
                raise Conflict(f"snapshot {existing.name!r} was left in status {existing.status} and its "
                               "volume is gone; delete it with state: absent")
            steps.append(Step("create_snapshot", target, volume, message=f"finish snapshot {existing.name!r}"))
        if name is not None and name != existing.name:
            holder = self.records.lookup(SNAPSHOT, name, "name", required=False)
            if holder is not None:
                raise Conflict(f"name: {name!r} already names snapshot {holder.id}", "name")
        changes = checked + self._plan_updates(existing, target, name)
        return self._finish(existing, target, steps, changes)
