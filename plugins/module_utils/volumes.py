# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes (storage_volume): create empty, from a snapshot or as a clone; extend, update, delete.

The plan is made by plan.Resource's engine; this file says which steps a volume task has
(`VolumeResource.ACTIONS`) and how each runs on the driver. A volume with connections is
deleted only with `force`, after its devices on this host and its exports are removed
(host_devices.force_detach).

Reverting (`revert_to`): reverts.py. Volume types, extra specs, QoS and pool: retypes.py.
Adopting (`source.existing`) and forgetting (`keep_storage`): adoption.py.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar

from .adoption import Adoption, adopt_step, leave_object, own_id
from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .host_devices import extend_attached, force_detach, refuse_held_open, sweep
from .objects import (
    AVAILABLE,
    CONNECTION,
    CREATING,
    DELETING,
    ERROR,
    ERROR_DELETING,
    EXTENDING,
    IN_USE,
    REVERTING,
    SNAPSHOT,
    STALE,
    VOLUME,
    Connection,
    Snapshot,
    Volume,
    is_interrupted,
    public_view,
)
from .plan import Action, Plan, Resource, Step, by_ref, half_made, is_missing, made_from_source, store_target
from .retypes import Retyping, change_qos
from .reverts import Reverting
from .units import GiB, parse_size
from .volume_types import describe

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store


# steps (the table is VolumeResource.ACTIONS) -----------------------------------
def _create(resource: Resource, step: Step, driver: Driver) -> None:
    step.target.driver_data = driver.create_volume(step.target)
    step.target.status = AVAILABLE


def _create_from_snapshot(resource: Resource, step: Step, driver: Driver) -> None:
    half_made(driver, step.target, step.source)
    step.target.driver_data = driver.create_volume_from_snapshot(step.target, step.source)
    step.target.status = AVAILABLE


def _clone(resource: Resource, step: Step, driver: Driver) -> None:
    half_made(driver, step.target, step.source)
    made_from_source(resource, step, driver.create_cloned_volume(step.target, step.source))


def _extend(resource: Resource, step: Step, driver: Driver) -> None:
    connections = resource.records.find(CONNECTION, volume_id=step.target.id)
    if connections:  # attached devices on this host grow too
        step.target.driver_data = extend_attached(resource.host, driver, step.target, connections)
    else:
        step.target.driver_data = driver.extend_volume(step.target, step.target.size)
    step.target.status = IN_USE if step.target.status == IN_USE else AVAILABLE


def _revert(resource: Resource, step: Step, driver: Driver) -> None:
    # The target already carries its size, status and reverted_to as planned.
    step.target.driver_data = driver.revert_to_snapshot(step.target, step.source)


def _delete(resource: Resource, step: Step, driver: Driver) -> None:
    half_made(driver, step.target, _source_of(resource, step.target))
    driver.delete_volume(step.target)


def _delete_volume(driver: Driver, volume: Volume) -> None:
    driver.delete_volume(volume)


def _delete_connection(resource: Resource, step: Step, driver: Driver) -> None:
    force_detach(resource.host, driver, step.source, step.target)


def _delete_snapshot(resource: Resource, step: Step, driver: Driver) -> None:  # of a cascade
    half_made(driver, step.target, resource.records.get(VOLUME, step.target.volume_id))
    driver.delete_snapshot(step.target)


def _source_of(resource: Resource, volume: Volume) -> Volume | Snapshot | None:
    if volume.source_snapshot_id:
        return resource.records.get(SNAPSHOT, volume.source_snapshot_id)
    return resource.records.get(VOLUME, volume.source_volume_id) if volume.source_volume_id else None


def _forget_connection(resource: Resource, step: Step, driver: Driver) -> None:
    # The record of an attachment task that was killed: what it left on this host goes too.
    if resource.on_host:
        sweep(resource.host, driver, step.source, resource.records.find(CONNECTION, volume_id=step.source.id))


class VolumeResource(Adoption, Reverting, Retyping):
    kind = VOLUME
    result_key = "volume"
    noop_on_controller = True
    # A forced delete hands the driver the export it removes, credentials included.
    needs_secrets = True
    ACTIONS: ClassVar[dict[str, Action]] = {
        "create": Action(_create, pending=CREATING, creates=True, undo=_delete_volume),
        "create_from_snapshot": Action(_create_from_snapshot, pending=CREATING, creates=True, undo=_delete_volume),
        "clone": Action(_clone, pending=CREATING, creates=True, undo=_delete_volume),
        "extend": Action(_extend, pending=EXTENDING),
        "revert": Action(_revert, pending=REVERTING, failure_keeps_pending=True),
        "change_qos": Action(change_qos),
        # No pending status: see the module docstring (a 'creating' record is made again empty).
        "adopt": Action(adopt_step, creates=True, undo=leave_object),
        "forget": Action(store_target, deletes=True, host_only=True),
        "forget_snapshot": Action(store_target, deletes=True, host_only=True),
        "delete": Action(_delete, pending=DELETING, deletes=True),
        "delete_connection": Action(_delete_connection, deletes=True),
        "forget_connection": Action(_forget_connection, deletes=True),
        "delete_snapshot": Action(_delete_snapshot, pending=DELETING, deletes=True),
        "update": Action(store_target),
    }

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        source = params.get("source") if isinstance(params.get("source"), dict) else {}
        # Two tasks adopting one object serialize on its name.
        return {VOLUME: [params.get("name"), source.get("volume")],
                SNAPSHOT: [source.get("snapshot"), params.get("revert_to")],
                "object": [source.get("existing") if isinstance(source.get("existing"), str) else None]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        found = by_ref(store, backend, VOLUME, params.get("id")) + by_ref(store, backend, VOLUME, params.get("name"))
        source = params.get("source") if isinstance(params.get("source"), dict) else {}
        found += by_ref(store, backend, VOLUME, source.get("volume"))
        if isinstance(source.get("existing"), str) and own_id(source["existing"]):
            found += store.find(backend, VOLUME, id=own_id(source["existing"]))  # adopted already?
        # revert_to's snapshot, found even when it is another volume's (refused, naming that volume)
        for snap in by_ref(store, backend, SNAPSHOT, params.get("revert_to")):
            found += [snap, *store.find(backend, VOLUME, id=snap["volume_id"])]
        for snap in by_ref(store, backend, SNAPSHOT, source.get("snapshot")):
            found.append(snap)
            found += store.find(backend, VOLUME, id=snap["volume_id"])
        for record in [r for r in found if r["kind"] == VOLUME]:
            found += store.find(backend, SNAPSHOT, volume_id=record["id"])
            found += store.find(backend, CONNECTION, volume_id=record["id"])
            for source_id, kind in ((record.get("source_snapshot_id"), SNAPSHOT),
                                    (record.get("source_volume_id"), VOLUME)):
                # A resumed create needs its source, and so does the delete of a half-made one
                # (half_made); a finished volume's delete does not.
                if source_id and record.get("status") in (CREATING, ERROR, DELETING, ERROR_DELETING):
                    found += store.find(backend, kind, id=source_id)
        return list({r["id"]: r for r in found}.values())

    def view(self, obj: Volume | Snapshot | None) -> dict:
        shown = public_view(obj) or {}
        if obj is not None:
            shown["snapshot_ids"] = sorted(s.id for s in self.records.find(SNAPSHOT, volume_id=obj.id))
        return shown

    def make_plan(self) -> Plan:
        name, volume_id = self._identity()
        existing = self._existing(name, volume_id)
        adopt = self._adopt_ref()
        if self.params.get("state", "present") == "absent":
            if self.params.get("revert_to") is not None:
                raise InvalidParameter("revert_to: only with state: present (a volume being deleted is not "
                                       "reverted)", "revert_to")
            if self.params.get("keep_storage"):
                return self._plan_forget(existing)
            return self._plan_absent(existing)
        if self.params.get("keep_storage"):
            raise InvalidParameter("keep_storage: only with state: absent (it forgets the volume's record and "
                                   "keeps its storage)", "keep_storage")
        size = parse_size(self.params["size"]) if self.params.get("size") is not None else None
        if existing is None:
            if adopt is not None:
                self._refuse_spec_on_adopt()
                return self._plan_adopt(name, volume_id, size, adopt)
            return self._plan_create(name, volume_id, size)
        self._refuse_other_object(existing, adopt)
        return self._plan_change(existing, name, size)

    def _plan_absent(self, existing: Volume | None) -> Plan:
        if existing is None:
            return Plan([], None, None)
        snapshots = self.records.find(SNAPSHOT, volume_id=existing.id)
        if snapshots and not self.params.get("cascade"):
            names = ", ".join(sorted(repr(s.name) for s in snapshots))
            raise Conflict(f"volume {existing.name!r} has snapshots {names}; delete them first or set "
                           "cascade: true to delete them with the volume", "cascade")
        connections = self.records.find(CONNECTION, volume_id=existing.id)
        steps = self._plan_force_disconnect(existing, connections) if connections else []
        steps += [Step("delete_snapshot", s, message=f"delete snapshot {s.name!r} ({s.id})") for s in snapshots]
        steps.append(Step("delete", existing, message=f"delete volume {existing.name!r} ({existing.id})"))
        return Plan(steps, self.view(existing), None)

    def _source(self) -> tuple[str, Volume | Snapshot | None]:
        source = self.params.get("source")
        if not source:
            return "create", None
        refs = {k: v for k, v in source.items() if v is not None} if isinstance(source, dict) else None
        if not refs or len(refs) != 1 or set(refs) - {"snapshot", "volume"}:
            raise InvalidParameter("source: give exactly one of snapshot or volume, as a name or an id", "source")
        (kind, ref), = refs.items()
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter(f"source.{kind}: must be a name or an id", f"source.{kind}")
        obj = self.records.lookup(kind, ref, f"source.{kind}")
        if kind == VOLUME:
            refuse_held_open(self.driver, self.records, obj, "clone", f"source.{kind}")
        allowed = (AVAILABLE,) if kind == SNAPSHOT else (AVAILABLE, IN_USE)
        if obj.status not in allowed:
            raise Conflict(f"source.{kind}: {kind} {obj.name!r} is {obj.status}; it must be "
                           f"{' or '.join(allowed)} to copy from", f"source.{kind}")
        return ("create_from_snapshot" if kind == SNAPSHOT else "clone"), obj

    def _plan_create(self, name: str | None, volume_id: str | None, size: int | None) -> Plan:
        if name is None:
            raise NotFound(f"id: no volume {volume_id} on backend {self.records.backend!r}; give a name "
                           "(and a size) to create one", "id")
        if self.params.get("revert_to") is not None:
            raise NotFound(f"revert_to: no volume {name!r} on backend {self.records.backend!r} to revert; "
                           "to make a new volume from a snapshot, use source.snapshot", "revert_to")
        action, source = self._source()
        source_size = getattr(source, "volume_size", None) or getattr(source, "size", None)
        if size is None:
            if source is None:
                raise InvalidParameter(f"size: required to create volume {name!r}", "size")
            size = source_size
        elif source is not None and size < source_size:
            raise Conflict(f"size: {size} GiB is smaller than the source {source.kind} {source.name!r} "
                           f"({source_size} GiB)", "size")
        spec, pool = self._requested_spec()
        volume = Volume(
            id=volume_id or self._next_id(), name=name, backend=self.records.backend, size=size,
            volume_type=spec, pool=pool,
            status=AVAILABLE, description=self.params.get("description") or "",
            metadata=copy.deepcopy(self.params.get("metadata") or {}),
            source_volume_id=source.id if action == "clone" else None,
            source_snapshot_id=source.id if action == "create_from_snapshot" else None,
            multiattach=bool(self.params.get("multiattach")))
        origin = f" from {source.kind} {source.name!r}" if source else ""
        origin += f" ({describe(spec)})" if spec else ""
        origin += f" in pool {pool!r}" if self.params.get("pool") is not None else ""
        step = Step(action, volume, source, message=f"create volume {name!r} of {size} GiB{origin}")
        return Plan([step], None, self.view(volume))

    def _recorded_source(self, existing: Volume) -> tuple[str, Volume | Snapshot | None]:
        if existing.source_snapshot_id:
            kind, source_id, action = SNAPSHOT, existing.source_snapshot_id, "create_from_snapshot"
        elif existing.source_volume_id:
            kind, source_id, action = VOLUME, existing.source_volume_id, "clone"
        else:
            return "create", None
        source = self.records.get(kind, source_id)
        if source is None:
            raise Conflict(f"volume {existing.name!r} was left in status {existing.status} and its source "
                           f"{kind} {source_id} is gone; delete it with state: absent")
        return action, source

    def _plan_change(self, existing: Volume, name: str | None, size: int | None) -> Plan:
        self._refuse_half_deleted(existing)
        target = copy.deepcopy(existing)
        steps: list[Step] = []
        grow, checked = None, []
        if self.verifies_backend() and (existing.status in (AVAILABLE, IN_USE) or is_missing(existing)):
            grow, checked = self._check_image(existing, target, size)
        snapshot = self._planned_revert(existing)
        if existing.status in (CREATING, ERROR) and not is_missing(existing):
            # Left by an interrupted or failed run: redo the create, same id.
            action, source = self._recorded_source(existing)
            target.size = max(existing.size, size or 0)
            steps.append(Step(action, target, source, message=f"finish creating volume {existing.name!r}"))
        elif snapshot is not None:
            steps.append(self._revert_step(existing, target, snapshot, size))
        elif existing.status == EXTENDING or grow or (size is not None and size > existing.size):
            target.size = max(existing.size, size or 0)
            target.status = AVAILABLE if existing.status == EXTENDING else target.status
            steps.append(Step("extend", target, message=grow if grow and target.size == existing.size else
                              f"extend volume {existing.name!r} from {existing.size} to {target.size} GiB"))
        elif size is not None and size < existing.size:
            raise Conflict(f"size: volume {existing.name!r} is {existing.size} GiB; volumes only grow, "
                           f"so {size} GiB is refused (shrinking would lose data)", "size")
        if name is not None and name != existing.name:
            holder = self.records.lookup(VOLUME, name, "name", required=False)
            if holder is not None:
                raise Conflict(f"name: {name!r} already names volume {holder.id}", "name")
        changes = checked + self._plan_updates(existing, target, name) + self._plan_spec(existing, target, steps)
        multiattach = self.params.get("multiattach")
        if multiattach is not None and bool(multiattach) != existing.multiattach:
            hosts = sorted({c.host for c in self.records.find(CONNECTION, volume_id=existing.id)
                            if c.host and c.status != STALE})  # a stale device's export is gone already
            if not multiattach and len(hosts) > 1:
                raise Conflict(f"multiattach: volume {existing.name!r} is connected to {', '.join(hosts)}; "
                               "disconnect all but one host first", "multiattach")
            target.multiattach = bool(multiattach)
            changes.append(f"set multiattach {str(target.multiattach).lower()}")
        return self._finish(existing, target, steps, changes)

    def _check_image(self, existing: Volume, target: Volume, size: int | None) -> tuple[str | None, list[str]]:
        """The volume's image checked on the backend: (the message of the step growing it back to its
        record's size, or None; record-only changes). An image gone, replaced or grown is refused."""
        found = self.driver.inspect_volume(existing)
        checked = self.check_on_backend(existing, target, found)
        recorded = (existing.driver_data or {}).get("format")
        if found.get("format") and recorded and found["format"] != recorded:
            raise Conflict(f"volume {existing.name!r} ({existing.id}): {found['object']} is not the {recorded} image "
                           "its record says (replaced outside the collection?); nothing was changed. Put the "
                           f"{recorded} image back, or remove the record with state: absent")
        actual = found.get("size")
        if actual is None:
            return None, checked
        if actual > max(existing.size, size or 0) * GiB:
            raise Conflict(f"size: volume {existing.name!r} ({existing.id}) is {actual} bytes on the backend "
                           f"({found['object']}) but {existing.size} GiB in its record: it was grown outside the "
                           "collection. Volumes do not shrink, so nothing was changed; give size: "
                           f"{-(-actual // GiB)} or more to keep it at that size", "size")
        if actual < existing.size * GiB:
            return (f"grow {found['object']} back to the {existing.size} GiB of its record: it is {actual} bytes "
                    "on the backend (shrunk outside the collection)"), checked
        return None, checked

    def _plan_force_disconnect(self, volume: Volume, connections: list[Connection]) -> list[Step]:
        """Steps that remove a volume's connections before it is deleted, or a clear refusal."""
        force = bool(self.params.get("force"))
        interrupted = [c for c in connections if is_interrupted(c)]
        connections = [c for c in connections if not is_interrupted(c)]
        described = ", ".join(sorted(f"{c.host} (attached as {c.device.get('path')})" if c.device else c.host
                                     for c in connections))
        if connections and not force and all(c.status == STALE for c in connections):
            hosts = ", ".join(sorted({c.host for c in connections}))
            raise Conflict(f"volume {volume.name!r} has a stale device on {hosts} "
                           "(its export was removed by a forced detach): run storage_attachment state: detached "
                           "there when that host is back, or set force: true to delete the volume and forget that "
                           "device (it stays on that host until removed by hand)", "force")
        if connections and not force:
            raise Conflict(f"volume {volume.name!r} is connected to {described}; detach it first (storage_attachment "
                           "state: detached) or set force: true to detach and delete it", "force")
        here = self.host.name() if self.on_host else None
        steps = []
        for conn in connections:
            if conn.device and conn.host == here and self.host.present(conn.device):
                users = self.host.users(conn.device)
                if users:
                    raise Conflict(f"force: volume {volume.name!r} is attached here as {conn.device.get('path')}, "
                                   f"which is in use ({', '.join(users)}); unmount it first", "force")
            if conn.device and conn.host != here:
                what = f"disconnect volume {volume.name!r} from {conn.host} (its device there goes stale)"
            elif conn.device:
                what = f"detach {conn.device.get('path')} and disconnect volume {volume.name!r} from {conn.host}"
            else:
                what = f"disconnect volume {volume.name!r} from {conn.host}"
            steps.append(Step("delete_connection", conn, volume, message=what))
        steps += [Step("forget_connection", c, volume, message=f"clean up after an interrupted task on volume "
                       f"{volume.name!r} (connection {c.id} was left {c.status})") for c in interrupted]
        return steps
