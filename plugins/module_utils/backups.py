# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups off the backend (storage_backup, storage_backup_info): take, delete and restore them.

The format of a backup location is backup_chunks.py's. A backup is read from a temporary snapshot (a
consistent image; crash-consistent when the volume is connected) through qemu-img, and restored by
assembling the image aside, verifying every chunk and the whole image, and only then writing it into the
volume, so a bad chunk never reaches the volume. The plan is made by plan.Resource's engine; this file says
which steps a backup task has (`BackupResource.ACTIONS`) and how each runs.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Callable, ClassVar

from .backup_chunks import (
    CHUNK_SIZE,
    Repository,
    assemble,
    check_target,
    dependents,
    latest,
    qemu_img,
    remove,
    store_image,
)
from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .handler import Handler, Task
from .host_devices import refuse_held_open
from .objects import (
    AVAILABLE,
    BACKUP,
    CONNECTION,
    CREATING,
    DELETING,
    IN_USE,
    REVERTING,
    VOLUME,
    Backup,
    RecordSet,
    Snapshot,
    Volume,
    check_name,
    is_live,
    public_view,
)
from .plan import Action, Plan, Resource, Step, by_ref, check_id
from .sealing import mask
from .units import GiB

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store
BACKUP_STATES = ("present", "absent", "restored")
# driver_data key of a volume restored from a backup: which one (a re-run without force then does nothing).
RESTORED_FROM = "restored_from_backup"


# steps (the table is BackupResource.ACTIONS) -----------------------------------
def _temporary_snapshot(driver: Driver, backup: Backup, volume: Volume | None) -> Snapshot:
    """The snapshot a backup is read from: named by the backup's id, never recorded (it lives for one task)."""
    snapshot = Snapshot(id=backup.id, name=f"backup-{backup.id}", backend=backup.backend,
                        volume_id=backup.volume_id, volume_size=backup.volume_size, status=CREATING)
    if volume is not None:  # its format is its volume's
        snapshot.driver_data = driver.half_made_data(snapshot, volume)
    return snapshot


def _drop_temporary_snapshot(resource: Resource, backup: Backup, driver: Driver) -> None:
    """What a create killed while reading left on the backend (its clean-up never ran): the snapshot."""
    snapshot = _temporary_snapshot(driver, backup, resource.records.get(VOLUME, backup.volume_id))
    if type(driver).image_of is not Driver.image_of and driver.snapshot_exists(snapshot):  # only those take one
        driver.delete_snapshot(snapshot)


def _create_backup(resource: Resource, step: Step, driver: Driver) -> None:
    backup, volume = step.target, step.source
    repo = Repository(backup.location)
    repo.prepare()
    parent = repo.read_manifest(backup.parent_id) if backup.parent_id else None
    snapshot = _temporary_snapshot(driver, backup, volume)
    snap_data, volume_data = driver.create_snapshot(snapshot, volume)
    snapshot.driver_data = snap_data
    if volume_data != volume.driver_data:
        volume.driver_data = volume_data
        resource.records.put(volume)
    raw = repo.tmp_path(f"{backup.id}.raw")
    try:
        path, fmt = driver.image_of(snapshot)
        qemu_img(["convert", "-f", fmt, "-O", "raw", path, raw], f"backup {backup.name!r}")
        stored = store_image(repo, raw, backup.id, parent)
    finally:
        remove(raw)
        driver.delete_snapshot(snapshot)
    backup.size = volume.size * GiB
    backup.stored_bytes = stored.written_bytes
    backup.driver_data = {"chunk_size": CHUNK_SIZE, "chunks": len(stored.manifest["chunks"]),
                          "changed_chunks": stored.changed_chunks, "written_chunks": stored.written_chunks,
                          "sha256": stored.manifest["sha256"]}
    backup.status = AVAILABLE
    resource.stats = {"changed_chunks": stored.changed_chunks, "written_chunks": stored.written_chunks,
                      "chunks": len(stored.manifest["chunks"])}


def _undo_backup(driver: Driver, backup: Backup) -> None:
    if os.path.isdir(backup.location):
        Repository(backup.location).delete([backup.id])


def _delete_backup(resource: Resource, step: Step, driver: Driver) -> None:
    _drop_temporary_snapshot(resource, step.target, driver)
    if os.path.isdir(step.target.location):
        Repository(step.target.location).delete([step.target.id])


def _verify_backup(resource: Resource, step: Step, driver: Driver) -> None:
    """Assemble the backup's image aside and verify it, before a restore step writes it into a volume."""
    backup = step.target
    repo = Repository(backup.location)
    repo.prepare()
    out = repo.tmp_path(f"restore-{backup.id}.raw")
    remove(out)
    try:
        assemble(repo, repo.read_manifest(backup.id), out)
    except BaseException:
        remove(out)
        raise
    resource.assembled = out


def _write_into(driver: Driver, volume: Volume, raw: str, what: str, new: bool = False) -> None:
    path, fmt = driver.image_of(volume)
    # -n: into the volume's existing image (its inode, its backing chain), zeros written where the backup has
    # none; a new volume reads zeros already, so its holes stay holes.
    qemu_img(["convert", "-n", *(["--target-is-zero"] if new else []), "-f", "raw", "-O", fmt, raw, path], what)


def _restore_new(resource: Resource, step: Step, driver: Driver) -> None:
    volume, backup = step.target, step.source
    raw = resource.assembled  # verified by the step before
    try:
        volume.driver_data = driver.create_volume(volume)
        _write_into(driver, volume, raw, f"restore_to: writing backup {backup.name!r} into new volume "
                                         f"{volume.name!r} (the volume is deleted again)", new=True)
    finally:
        remove(raw)
    volume.driver_data = dict(volume.driver_data, **{RESTORED_FROM: backup.id})
    volume.status = AVAILABLE


def _restore_into(resource: Resource, step: Step, driver: Driver) -> None:
    volume, backup = step.target, step.source
    raw = resource.assembled  # verified by the step before: a bad chunk stopped there, the volume untouched
    try:
        _write_into(driver, volume, raw, f"restore_to: writing backup {backup.name!r} into volume "
                                         f"{volume.name!r} failed midway; its data is partly overwritten and "
                                         "it stays in status reverting until a restore succeeds")
    finally:
        remove(raw)
    volume.driver_data = dict(volume.driver_data, **{RESTORED_FROM: backup.id})
    volume.status = AVAILABLE


class BackupResource(Resource):
    kind = BACKUP
    result_key = "backup"
    noop_on_controller = True
    # Nothing of a backup can be probed on the backend; a task with nothing to do is answered from the store.
    noop_checks_backend = False
    # Snapshots on drivers such as Cinder's read the volume's model (credentials included).
    needs_secrets = True
    ACTIONS: ClassVar[dict[str, Action]] = {
        "create_backup": Action(_create_backup, pending=CREATING, creates=True, undo=_undo_backup),
        "delete_backup": Action(_delete_backup, pending=DELETING, deletes=True, host_only=True),
        "verify_backup": Action(_verify_backup, host_only=True),
        "restore_new": Action(_restore_new, pending=CREATING, creates=True,
                              undo=lambda driver, volume: driver.delete_volume(volume)),
        "restore_into": Action(_restore_into, pending=REVERTING, failure_keeps_pending=True),
        "update": Action(lambda resource, step, driver: None, host_only=True),
    }
    stats: dict | None = None
    # The verified image a restore step writes (set by the verify step before it).
    assembled: str = ""

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {BACKUP: [params.get("name")], VOLUME: [params.get("volume"), params.get("restore_to")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        # Every backup of the backend: chains and an incremental's parent are decided among them.
        found = store.find(backend, BACKUP)
        for ref in (params.get("volume"), params.get("restore_to")):
            found += by_ref(store, backend, VOLUME, ref)
        # The backup's volume, named by the backup's name or id: a delete may clean up on it.
        backup_id = params["id"].lower() if isinstance(params.get("id"), str) else None
        found += [v for b in found if b["kind"] == BACKUP and (b["name"] == params.get("name") or b["id"] == backup_id)
                  for v in store.find(backend, VOLUME, id=b["volume_id"])]
        found += [c for v in found if v["kind"] == VOLUME for c in store.find(backend, CONNECTION, volume_id=v["id"])]
        return list({r["id"]: r for r in found}.values())

    @classmethod
    def host_records(cls, records: list[dict], params: dict, whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
        """Connections are read for whether the volume is in use, never for their credentials."""
        sent = [mask(r) if r["kind"] == CONNECTION else r for r in records]
        return sent, {r["id"] for r in records if r["kind"] == CONNECTION}

    def view(self, obj: object) -> dict:
        return public_view(obj) or {}

    def make_plan(self) -> Plan:
        params = self.params
        state = params.get("state", "present")
        if state not in BACKUP_STATES:
            raise InvalidParameter(f"state: {state!r} is not one of {', '.join(BACKUP_STATES)}", "state")
        name = check_name(params["name"]) if params.get("name") is not None else None
        backup_id = check_id(params.get("id"))
        if name is None and backup_id is None:
            raise InvalidParameter("name: one of name or id is required", "name")
        description = params.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidParameter("description: must be a string", "description")
        existing = self._existing(name, backup_id)
        if state != "absent" and self.driver is not None:  # before a snapshot or the target directory is made
            self.driver.refuse_without_backups()
        self.restored: Volume | None = None
        if state == "absent":
            return self._plan_delete(existing)
        if state == "restored":
            return self._plan_restore(existing, name or backup_id)
        if existing is not None:
            return self._plan_keep(existing, name)
        if name is None:
            raise NotFound(f"id: no backup {backup_id} on backend {self.records.backend!r}; give a name, a volume "
                           "and a target to create one", "id")
        return self._plan_create(name, backup_id)

    def _plan_create(self, name: str, backup_id: str | None) -> Plan:
        volume_ref = self.params.get("volume")
        if not isinstance(volume_ref, str) or not volume_ref:
            raise InvalidParameter(f"volume: required to create backup {name!r}", "volume")
        location = check_target(self.params.get("target"))
        volume = self.records.lookup(VOLUME, volume_ref, "volume")
        refuse_held_open(self.driver, self.records, volume, "backup", "volume")
        if volume.status not in (AVAILABLE, IN_USE):
            raise Conflict(f"volume: {volume.name!r} is {volume.status}; it must be available or in-use to back "
                           "it up", "volume")
        parent = None
        if self.params.get("incremental"):
            parent = latest(self.records.all(BACKUP), volume.id, location)
            if parent is None:
                raise InvalidParameter(f"incremental: no available backup of volume {volume.name!r} in {location} "
                                       "to build on; take a full backup first (incremental: false)", "incremental")
        crash = any(is_live(c) for c in self.records.find(CONNECTION, volume_id=volume.id))
        backup = Backup(id=backup_id or self._next_id(), name=name, backend=self.records.backend,
                        volume_id=volume.id, volume_name=volume.name, volume_size=volume.size, location=location,
                        parent_id=parent.id if parent else None, status=AVAILABLE, crash_consistent=crash,
                        size=volume.size * GiB, description=self.params.get("description") or "")
        kind = f"incremental backup (on {parent.name!r})" if parent else "full backup"
        note = ", crash-consistent: the volume is connected" if crash else ""
        step = Step("create_backup", backup, volume,
                    message=f"create {kind} {name!r} of volume {volume.name!r} in {location}{note}")
        return Plan([step], None, self.view(backup))

    def _plan_keep(self, existing: Backup, name: str | None) -> Plan:
        if existing.status != AVAILABLE:
            raise Conflict(f"name: backup {existing.name!r} was left in status {existing.status} by an interrupted "
                           "task; delete it with state: absent, then back up again", "name")
        volume_ref = self.params.get("volume")
        if volume_ref is not None:
            volume = self.records.lookup(VOLUME, volume_ref, "volume", required=False)
            if volume is None or volume.id != existing.volume_id:
                raise Conflict(f"name: backup {existing.name!r} exists and is of volume {existing.volume_name!r} "
                               f"({existing.volume_id}), not {volume_ref!r}; backup names are unique per backend",
                               "name")
        if self.params.get("target") is not None and check_target(self.params["target"]) != existing.location:
            raise Conflict(f"target: backup {existing.name!r} exists in {existing.location}, not "
                           f"{self.params['target']}", "target")
        target = copy.deepcopy(existing)
        changes = []
        if name is not None and name != existing.name:
            target.name = name
            changes.append(f"rename to {name!r}")
        description = self.params.get("description")
        if description is not None and description != existing.description:
            target.description = description
            changes.append("set description")
        return self._finish(existing, target, [], changes)

    def _plan_delete(self, existing: Backup | None) -> Plan:
        if existing is None:
            return Plan([], None, None)
        chain = dependents(self.records.all(BACKUP), existing.id)
        if chain and not self.params.get("delete_dependents"):
            names = ", ".join(repr(b.name) for b in chain)
            raise Conflict(f"delete_dependents: incremental backup(s) {names} depend on backup {existing.name!r}; "
                           "delete them first, or set delete_dependents: true to delete them with it; nothing "
                           "was deleted", "delete_dependents")
        steps = [Step("delete_backup", b, message=f"delete backup {b.name!r} ({b.id}), which depends on "
                      f"{existing.name!r}") for b in chain]
        steps.append(Step("delete_backup", existing, message=f"delete backup {existing.name!r} ({existing.id})"))
        self.deleted = [self.view(b) for b in chain]
        return Plan(steps, self.view(existing), None)

    def _plan_restore(self, backup: Backup | None, ref: str) -> Plan:
        if backup is None:
            raise NotFound(f"name: no backup {ref!r} on backend {self.records.backend!r} to restore", "name")
        if backup.status != AVAILABLE:
            raise Conflict(f"name: backup {backup.name!r} is {backup.status}, not available; it cannot be restored",
                           "name")
        ref = self.params.get("restore_to")
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("restore_to: required with state: restored, the name of a new volume or of an "
                                   "existing one (with force: true)", "restore_to")
        volume = self.records.lookup(VOLUME, ref, "restore_to", required=False)
        # A new volume a killed restore of this backup left creating (its record says which) is made again.
        if volume is None or (volume.status == CREATING and volume.driver_data.get(RESTORED_FROM) == backup.id):
            name = volume.name if volume else check_name(ref, "restore_to")
            volume = Volume(id=volume.id if volume else self._next_id(), name=name, backend=self.records.backend,
                            size=backup.volume_size, status=AVAILABLE, driver_data={RESTORED_FROM: backup.id},
                            description=f"restored from backup {backup.name}")
            self.restored = volume
            step = Step("restore_new", volume, backup,
                        message=f"restore backup {backup.name!r} to new volume {name!r} ({backup.volume_size} GiB)")
            return Plan([self._verify_step(backup), step], None, self.view(volume))
        self.restored = volume
        if not self.params.get("force"):
            if (volume.driver_data or {}).get(RESTORED_FROM) == backup.id:
                return Plan([], self.view(volume), self.view(volume))
            raise Conflict(f"force: volume {volume.name!r} exists; set force: true to overwrite its data with "
                           f"backup {backup.name!r}, or restore to a new volume name", "force")
        live = any(is_live(c) for c in self.records.find(CONNECTION, volume_id=volume.id))
        if volume.status not in (AVAILABLE, REVERTING) or live:  # reverting: a restore that failed midway
            raise Conflict(f"restore_to: volume {volume.name!r} is {volume.status} or connected to a host; detach it "
                           "before restoring a backup into it", "restore_to")
        if volume.size < backup.volume_size:
            raise Conflict(f"restore_to: volume {volume.name!r} has {volume.size} GiB, backup {backup.name!r} holds "
                           f"{backup.volume_size} GiB; extend the volume first", "restore_to")
        target = copy.deepcopy(volume)
        step = Step("restore_into", target, backup,
                    message=f"overwrite volume {volume.name!r} with backup {backup.name!r}")
        return Plan([self._verify_step(backup), step], self.view(volume), self.view(target))

    @staticmethod
    def _verify_step(backup: Backup) -> Step:
        return Step("verify_backup", copy.deepcopy(backup),
                    message=f"verify backup {backup.name!r}: every chunk's checksum and the whole image's")

    def result(self, plan: Plan) -> dict:
        if self.params.get("state") == "restored":
            backup = self._existing(*self._refs())
            volume = None
            if self.restored is not None:
                current = self.records.get(VOLUME, self.restored.id) if self.executed else None
                volume = self.view(current or self.restored)
            return {"changed": plan.changed, "actions": [s.message for s in plan.steps],
                    "backup": self.view(backup), "volume": volume,
                    "diff": {"before": plan.before or {}, "after": plan.after or {}}}
        result = super().result(plan)
        if self.stats is not None:
            result["chunks"] = self.stats
        if getattr(self, "deleted", None):
            result["deleted_dependents"] = self.deleted
        return result

    def _refs(self) -> tuple[str | None, str | None]:
        name = self.params.get("name")
        return name, check_id(self.params.get("id"))


class BackupInfo(Handler):
    """storage_backup_info: the backups of a backend, from the store (their volume may be gone)."""

    result_key = "backups"
    noop_on_controller = True

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        return store.find(backend, BACKUP) + by_ref(store, backend, VOLUME, params.get("volume"))

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, None]:
        params = task.params
        for key in ("volume", "name"):
            if params.get(key) is not None and (not isinstance(params[key], str) or not params[key]):
                raise InvalidParameter(f"{key}: must be a non-empty string", key)
        backup_id = check_id(params.get("id"))
        records = RecordSet(task.backend, task.records or [])
        backups = records.find(BACKUP, name=params.get("name"), id=backup_id)
        ref = params.get("volume")
        if ref is not None:
            volume = records.lookup(VOLUME, ref, "volume", required=False)
            # A deleted volume's backups are still found by its name or id.
            wanted_id, by_name = (volume.id, False) if volume else (ref.lower(), True)
            backups = [b for b in backups if b.volume_id == wanted_id or (by_name and b.volume_name == ref)]
        shown = [public_view(b) for b in sorted(backups, key=lambda b: (b.created_at, b.name, b.id))]
        return {"changed": False, cls.result_key: shown}, None
