# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan-then-apply for volumes and snapshots, written once for every module.

`plan()` is a pure function of (task parameters, records): it validates the
parameters, decides the steps and simulates the result, so check mode and diff
are honest and the controller can compute the same plan to write the pending
records (status creating/extending/deleting) before the storage work starts.
`execute()` runs the steps on a driver; each step either completes and stores
its record, or undoes what it began and leaves the record as it was (a failed
delete is kept visible as error_deleting).

New objects take their ids from `new_ids` so that the controller's plan and the
module's plan name the same objects.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

from .drivers.base import Driver
from .errors import BlockstoreError, Conflict, DriverError, InvalidParameter, NotFound
from .objects import (
    AVAILABLE,
    CONNECTION,
    CREATING,
    DELETING,
    ERROR,
    ERROR_DELETING,
    EXTENDING,
    IN_USE,
    SNAPSHOT,
    VOLUME,
    RecordSet,
    Snapshot,
    Volume,
    check_name,
    is_uuid,
    new_id,
    now,
    public_view,
)
from .persistence.base import Store
from .units import parse_size

STATES = ("present", "absent")
# Status a record carries while a step runs: what a crash leaves behind.
TRANSIENT = {"create": CREATING, "create_from_snapshot": CREATING, "clone": CREATING,
             "create_snapshot": CREATING, "extend": EXTENDING, "delete": DELETING,
             "delete_snapshot": DELETING}
CREATES = ("create", "create_from_snapshot", "clone", "create_snapshot")
DELETES = ("delete", "delete_snapshot", "delete_connection", "forget_connection")


@dataclasses.dataclass
class Step:
    action: str
    target: Volume | Snapshot
    source: Volume | Snapshot | None = None
    message: str = ""


@dataclasses.dataclass
class Plan:
    steps: list[Step]
    before: dict | None
    after: dict | None

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def pending(self) -> list[dict]:
        """Records to write before the storage work, in their transient status."""
        records = []
        for step in self.steps:
            status = TRANSIENT.get(step.action)
            if status:
                obj = copy.deepcopy(step.target)
                obj.status = status
                records.append(dataclasses.asdict(obj))
        return records

    def new_ids(self) -> list[str]:
        return [s.target.id for s in self.steps if s.action in CREATES]


def _check_id(value: object, option: str = "id") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_uuid(value.lower()):
        raise InvalidParameter(f"{option}: {value!r} is not a UUID", option)
    return value.lower()


def _check_text(params: dict, key: str) -> None:
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(f"{key}: must be a string, got {type(value).__name__}", key)


def _check_metadata(params: dict) -> None:
    metadata = params.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidParameter("metadata: must be a dict with string keys", "metadata")


def refuse_live_qcow2(records: RecordSet, volume: Volume, what: str, option: str) -> None:
    """A qcow2 image held open by qemu-storage-daemon would keep taking writes in the frozen file."""
    if volume.driver_data.get("format") != "qcow2":
        return
    for conn in records.find(CONNECTION, volume_id=volume.id):
        device = conn.device or {}
        if device.get("method") == "userspace" and device.get("protocol") == "local":
            raise Conflict(f"{option}: {volume.name!r} is a qcow2 image attached on {conn.host} as "
                           f"{device.get('path')}; detach it before taking a {what} of it (its daemon holds "
                           "the image open)", option)


def lock_keys(backend: str, records: list[dict], names: dict[str, list[str]]) -> set[str]:
    """Keys that serialize tasks on the same objects, whether named by name or by id."""
    keys = {f"{backend}:{kind}:name:{name}" for kind, values in names.items() for name in values if name}
    for record in records:
        keys.add(f"{backend}:{record['kind']}:id:{record['id']}")
        if record.get("name"):
            keys.add(f"{backend}:{record['kind']}:name:{record['name']}")
    return keys


class Resource:
    """CRUD with check-mode simulation, shared by volumes and snapshots."""

    kind: ClassVar[str] = ""
    # True when a task whose plan has no steps needs nothing from the host (no host facts in
    # its plan, no device to look at): the action plugin then answers it from the store without
    # shipping the module (docs/performance.md). False where the host's state matters.
    noop_on_controller: ClassVar[bool] = False

    def __init__(self, records: RecordSet, params: dict, new_ids: list[str] | None = None) -> None:
        self.records = records
        self.params = params
        self._new_ids = list(new_ids or [])
        # Until execute() runs (check mode), the result shows the plan's simulation.
        self.executed = False
        self.on_host = False  # True where the module runs (prepare()); host facts can be read there

    def _next_id(self) -> str:
        return self._new_ids.pop(0) if self._new_ids else new_id()

    def prepare(self, sealer: object) -> None:
        """Called where the module runs, before plan(): host facts and the key to sealed secrets."""
        self.on_host = True

    # selection (controller side) ------------------------------------------
    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        raise NotImplementedError

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        raise NotImplementedError

    @staticmethod
    def _by_ref(store: Store, backend: str, kind: str, ref: object) -> list[dict]:
        if not isinstance(ref, str) or not ref:
            return []
        if is_uuid(ref.lower()):
            return store.find(backend, kind, id=ref.lower())
        return store.find(backend, kind, name=ref)

    # planning -----------------------------------------------------------
    def plan(self) -> Plan:
        raise NotImplementedError

    def view(self, obj: Volume | Snapshot | None) -> dict:
        return public_view(obj) or {}

    def _identity(self) -> tuple[str | None, str | None]:
        params = self.params
        name = check_name(params["name"]) if params.get("name") is not None else None
        object_id = _check_id(params.get("id"))
        if name is None and object_id is None:
            raise InvalidParameter("name: one of name or id is required", "name")
        if params.get("state", "present") not in STATES:
            raise InvalidParameter(f"state: {params.get('state')!r} is not one of {', '.join(STATES)}", "state")
        _check_text(params, "description")
        _check_metadata(params)
        return name, object_id

    def _existing(self, name: str | None, object_id: str | None) -> Volume | Snapshot | None:
        if object_id is None:
            return self.records.lookup(self.kind, name, "name", required=False)
        found = self.records.get(self.kind, object_id)
        if name is not None:
            holder = self.records.lookup(self.kind, name, "name", required=False)
            if holder is not None and holder.id != object_id:
                raise Conflict(f"name: {name!r} already names {self.kind} {holder.id}, not {object_id}", "name")
        return found

    def _plan_updates(self, existing: Volume | Snapshot, target: Volume | Snapshot, name: str | None) -> list[str]:
        """Rename, description and metadata changes; returns what changed."""
        changes = []
        if name is not None and name != existing.name:
            target.name = name
            changes.append(f"rename to {name!r}")
        for key in ("description", "metadata"):
            value = self.params.get(key)
            if value is not None and value != getattr(existing, key):
                setattr(target, key, copy.deepcopy(value))
                changes.append(f"set {key}")
        return changes

    def _refuse_half_deleted(self, existing: Volume | Snapshot) -> None:
        if existing.status in (DELETING, ERROR_DELETING):
            raise Conflict(
                f"{self.kind} {existing.name!r} ({existing.id}) is in status {existing.status}: a delete was "
                "interrupted or failed. Run the task with state: absent to finish it, then create it again.")

    # execution ----------------------------------------------------------
    def execute(self, plan: Plan, driver: Driver) -> None:
        self.executed = True
        for step in plan.steps:
            if step.action == "update":
                step.target.updated_at = now()
                self.records.put(step.target)
                continue
            before = self.records.get(step.target.kind, step.target.id)
            try:
                getattr(self, "_do_" + step.action)(step, driver)
            except (BlockstoreError, OSError) as exc:
                self._undo(step, before, driver)
                if isinstance(exc, OSError):
                    raise DriverError(f"{self.kind}: {step.message} failed: {exc}") from None
                raise
            if step.action in DELETES:
                self.records.remove(step.target)
            else:
                step.target.updated_at = now()
                self.records.put(step.target)

    def _undo(self, step: Step, before: Volume | Snapshot | None, driver: Driver) -> None:
        """Leave no half state: remove what a failed create began; keep a failed delete visible."""
        if step.action in CREATES:
            try:
                if step.action == "create_snapshot":
                    driver.delete_snapshot(step.target)
                else:
                    driver.delete_volume(step.target)
            except (BlockstoreError, OSError):
                pass  # the record stays 'creating' via the store's pending copy; a re-run retries
            else:
                self.records.remove(step.target)
        elif step.action in DELETES:
            step.target.status = ERROR if step.target.kind == CONNECTION else ERROR_DELETING
            self.records.put(step.target)
        elif before is not None:
            self.records.put(before)

    def _do_create(self, step: Step, driver: Driver) -> None:
        step.target.driver_data = driver.create_volume(step.target)
        step.target.status = AVAILABLE

    def _do_create_from_snapshot(self, step: Step, driver: Driver) -> None:
        step.target.driver_data = driver.create_volume_from_snapshot(step.target, step.source)
        step.target.status = AVAILABLE

    def _do_clone(self, step: Step, driver: Driver) -> None:
        step.target.driver_data, source_data = driver.create_cloned_volume(step.target, step.source)
        step.target.status = AVAILABLE
        if source_data != step.source.driver_data:
            step.source.driver_data = source_data
            self.records.put(step.source)

    def _do_extend(self, step: Step, driver: Driver) -> None:
        connections = self.records.find(CONNECTION, volume_id=step.target.id)
        if connections:
            from .attachments import extend_attached  # attached devices on this host grow too
            step.target.driver_data = extend_attached(driver, step.target, connections)
        else:
            step.target.driver_data = driver.extend_volume(step.target, step.target.size)
        step.target.status = IN_USE if step.target.status == IN_USE else AVAILABLE

    def _do_delete(self, step: Step, driver: Driver) -> None:
        driver.delete_volume(step.target)

    def _do_delete_connection(self, step: Step, driver: Driver) -> None:
        from .attachments import force_disconnect
        force_disconnect(driver, step.source, step.target)

    def _do_forget_connection(self, step: Step, driver: Driver) -> None:
        # The record of an attachment task that was killed: what it left on this host goes too.
        from .attachments import sweep_devices
        if self.on_host:
            sweep_devices(driver, step.source, self.records.find(CONNECTION, volume_id=step.source.id))

    def _do_create_snapshot(self, step: Step, driver: Driver) -> None:
        step.target.driver_data, volume_data = driver.create_snapshot(step.target, step.source)
        step.target.status = AVAILABLE
        if volume_data != step.source.driver_data:
            step.source.driver_data = volume_data
            self.records.put(step.source)

    def _do_delete_snapshot(self, step: Step, driver: Driver) -> None:
        driver.delete_snapshot(step.target)

    # result -------------------------------------------------------------
    def result(self, plan: Plan, result_key: str) -> dict:
        """What the module returns; after execute() it shows the stored outcome."""
        if plan.after is None:
            shown = dict(plan.before or {}, status="deleted") if plan.before else None
        else:
            current = self.records.get(self.kind, plan.after["id"]) if self.executed else None
            shown = self.view(current) if current is not None else plan.after
        return {
            "changed": plan.changed,
            "actions": [s.message for s in plan.steps],
            result_key: shown,
            "diff": {"before": plan.before or {}, "after": plan.after or {}},
        }


class VolumeResource(Resource):
    kind = VOLUME
    noop_on_controller = True

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        source = params.get("source") if isinstance(params.get("source"), dict) else {}
        return {VOLUME: [params.get("name"), source.get("volume")], SNAPSHOT: [source.get("snapshot")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        found = cls._by_ref(store, backend, VOLUME, params.get("id")) + cls._by_ref(
            store, backend, VOLUME, params.get("name"))
        source = params.get("source") if isinstance(params.get("source"), dict) else {}
        found += cls._by_ref(store, backend, VOLUME, source.get("volume"))
        for snap in cls._by_ref(store, backend, SNAPSHOT, source.get("snapshot")):
            found.append(snap)
            found += store.find(backend, VOLUME, id=snap["volume_id"])
        for record in [r for r in found if r["kind"] == VOLUME]:
            found += store.find(backend, SNAPSHOT, volume_id=record["id"])
            found += store.find(backend, CONNECTION, volume_id=record["id"])
            for source_id, kind in ((record.get("source_snapshot_id"), SNAPSHOT),
                                    (record.get("source_volume_id"), VOLUME)):
                if source_id and record.get("status") == CREATING:  # a resumed create needs its source
                    found += store.find(backend, kind, id=source_id)
        return list({r["id"]: r for r in found}.values())

    def view(self, obj: Volume | Snapshot | None) -> dict:
        shown = public_view(obj) or {}
        if obj is not None:
            shown["snapshot_ids"] = sorted(s.id for s in self.records.find(SNAPSHOT, volume_id=obj.id))
        return shown

    def plan(self) -> Plan:
        name, volume_id = self._identity()
        existing = self._existing(name, volume_id)
        if self.params.get("state", "present") == "absent":
            return self._plan_absent(existing)
        size = parse_size(self.params["size"]) if self.params.get("size") is not None else None
        if existing is None:
            return self._plan_create(name, volume_id, size)
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
        if connections:
            from .attachments import plan_force_disconnect
            steps = plan_force_disconnect(existing, connections, bool(self.params.get("force")), self.on_host)
        else:
            steps = []
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
            refuse_live_qcow2(self.records, obj, "clone", f"source.{kind}")
        allowed = (AVAILABLE,) if kind == SNAPSHOT else (AVAILABLE, IN_USE)
        if obj.status not in allowed:
            raise Conflict(f"source.{kind}: {kind} {obj.name!r} is {obj.status}; it must be "
                           f"{' or '.join(allowed)} to copy from", f"source.{kind}")
        return ("create_from_snapshot" if kind == SNAPSHOT else "clone"), obj

    def _plan_create(self, name: str | None, volume_id: str | None, size: int | None) -> Plan:
        if name is None:
            raise NotFound(f"id: no volume {volume_id} on backend {self.records.backend!r}; give a name "
                           "(and a size) to create one", "id")
        action, source = self._source()
        source_size = getattr(source, "volume_size", None) or getattr(source, "size", None)
        if size is None:
            if source is None:
                raise InvalidParameter(f"size: required to create volume {name!r}", "size")
            size = source_size
        elif source is not None and size < source_size:
            raise Conflict(f"size: {size} GiB is smaller than the source {source.kind} {source.name!r} "
                           f"({source_size} GiB)", "size")
        volume = Volume(
            id=volume_id or self._next_id(), name=name, backend=self.records.backend, size=size,
            status=AVAILABLE, description=self.params.get("description") or "",
            metadata=copy.deepcopy(self.params.get("metadata") or {}),
            source_volume_id=source.id if action == "clone" else None,
            source_snapshot_id=source.id if action == "create_from_snapshot" else None,
            multiattach=bool(self.params.get("multiattach")))
        origin = f" from {source.kind} {source.name!r}" if source else ""
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
        if existing.status in (CREATING, ERROR):
            # Left by an interrupted or failed run: redo the create, same id.
            action, source = self._recorded_source(existing)
            target.size = max(existing.size, size or 0)
            steps.append(Step(action, target, source, message=f"finish creating volume {existing.name!r}"))
        elif existing.status == EXTENDING or (size is not None and size > existing.size):
            target.size = max(existing.size, size or 0)
            target.status = AVAILABLE if existing.status == EXTENDING else existing.status
            steps.append(Step("extend", target, message=f"extend volume {existing.name!r} from "
                              f"{existing.size} to {target.size} GiB"))
        elif size is not None and size < existing.size:
            raise Conflict(f"size: volume {existing.name!r} is {existing.size} GiB; volumes only grow, "
                           f"so {size} GiB is refused (shrinking would lose data)", "size")
        if name is not None and name != existing.name:
            holder = self.records.lookup(VOLUME, name, "name", required=False)
            if holder is not None:
                raise Conflict(f"name: {name!r} already names volume {holder.id}", "name")
        changes = self._plan_updates(existing, target, name)
        multiattach = self.params.get("multiattach")
        if multiattach is not None and bool(multiattach) != existing.multiattach:
            hosts = sorted({c.host for c in self.records.find(CONNECTION, volume_id=existing.id) if c.host})
            if not multiattach and len(hosts) > 1:
                raise Conflict(f"multiattach: volume {existing.name!r} is connected to {', '.join(hosts)}; "
                               "disconnect all but one host first", "multiattach")
            target.multiattach = bool(multiattach)
            changes.append(f"set multiattach {str(target.multiattach).lower()}")
        if changes:
            steps.append(Step("update", target, message=f"volume {existing.name!r}: {', '.join(changes)}"))
        if not steps:
            return Plan([], self.view(existing), self.view(existing))
        return Plan(steps, self.view(existing), self.view(target))


class SnapshotResource(Resource):
    kind = SNAPSHOT
    noop_on_controller = True

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {VOLUME: [params.get("volume")], SNAPSHOT: [params.get("name")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        found = cls._by_ref(store, backend, SNAPSHOT, params.get("id")) + cls._by_ref(
            store, backend, SNAPSHOT, params.get("name"))
        found += [v for s in found for v in store.find(backend, VOLUME, id=s["volume_id"])]
        found += cls._by_ref(store, backend, VOLUME, params.get("volume"))
        found += [c for v in found if v["kind"] == VOLUME for c in store.find(backend, CONNECTION, volume_id=v["id"])]
        return list({r["id"]: r for r in found}.values())

    def plan(self) -> Plan:
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
        refuse_live_qcow2(self.records, volume, "snapshot", "volume")
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
        if existing.status in (CREATING, ERROR):
            volume = self.records.get(VOLUME, existing.volume_id)
            if volume is None:
                raise Conflict(f"snapshot {existing.name!r} was left in status {existing.status} and its "
                               "volume is gone; delete it with state: absent")
            steps.append(Step("create_snapshot", target, volume, message=f"finish snapshot {existing.name!r}"))
        if name is not None and name != existing.name:
            holder = self.records.lookup(SNAPSHOT, name, "name", required=False)
            if holder is not None:
                raise Conflict(f"name: {name!r} already names snapshot {holder.id}", "name")
        changes = self._plan_updates(existing, target, name)
        if changes:
            steps.append(Step("update", target, message=f"snapshot {existing.name!r}: {', '.join(changes)}"))
        if not steps:
            return Plan([], self.view(existing), self.view(existing))
        return Plan(steps, self.view(existing), self.view(target))


RESOURCES = {VOLUME: VolumeResource, SNAPSHOT: SnapshotResource}
