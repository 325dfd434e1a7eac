# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting and forgetting volumes (storage_volume `source.existing`, `keep_storage`): the plans and the step.

Adopting takes over an object already on the backend that no record knows: checked where the
module runs (it exists, no record of this store has it, the backend is not another store's; its
size read there), then recorded. The collection names objects by id (DESIGN.md, decision 7), so an
object named otherwise is renamed `volume-<id>`, and only when the task asks (`source.rename`). No
pending record is written first: a record `creating` would be made again, empty, by the next run,
over the data it was to keep. The controller's plan cannot read the backend; the module's does,
and its result is the one returned.

Forgetting (`state: absent` with `keep_storage`) removes the records only; the object stays, so the
drift check lists it as unknown and adopting it again brings it back. `Adoption` is a part of
volumes.VolumeResource.
"""

from __future__ import annotations

import copy

from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .objects import AVAILABLE, CONNECTION, SNAPSHOT, VOLUME, Volume, has_control_characters, is_uuid
from .plan import Plan, Resource, Step
from .units import GiB


def adopt_step(resource: Resource, step: Step, driver: Driver) -> None:
    """The step of an adopt: the driver takes the object over (renamed if asked), then it grows to its size."""
    found = step.source  # {"name": the object's name, "size": its bytes}
    step.target.driver_data = dict(driver.adopt_volume(step.target, found["name"]), adopted_from=found["name"])
    if step.target.size * GiB > found["size"]:
        step.target.driver_data = driver.extend_volume(step.target, step.target.size)


def leave_object(driver: Driver, volume: Volume) -> None:
    """A failed adopt removes nothing: the object was the user's before the task (a rename that was
    done stays: drift lists it as unknown, and adopting it by its new name brings it back)."""


def own_id(object_name: str) -> str | None:
    """The volume id in an object named as this collection names volumes (`volume-<id>`), else None."""
    prefix = "volume-"
    suffix = object_name[len(prefix):] if object_name.startswith(prefix) else ""
    return suffix if suffix == suffix.lower() and is_uuid(suffix) else None


class Adoption(Resource):
    """VolumeResource's plans of adopting and forgetting (a part of it: its ACTIONS run them)."""

    def _adopt_ref(self) -> str | None:
        """The name of the backend object to adopt (source.existing), checked; None when not asked."""
        source = self.params.get("source")
        if not isinstance(source, dict):
            return None
        ref = source.get("existing")
        if ref is None:
            if source.get("rename") is not None:
                raise InvalidParameter("source.rename: only with source.existing (the object to adopt)",
                                       "source.rename")
            return None
        if source.get("snapshot") is not None or source.get("volume") is not None:
            raise InvalidParameter("source: give exactly one of snapshot, volume or existing", "source")
        if not isinstance(ref, str) or not ref or ref in (".", "..") or "/" in ref or has_control_characters(ref):
            raise InvalidParameter(f"source.existing: must be the name of one object on the backend (a file in the "
                                   f"file backend's directory, an image in the rbd pool: no '/'), got {ref!r}",
                                   "source.existing")
        return ref

    def _plan_adopt(self, name: str | None, volume_id: str | None, size: int | None, ref: str) -> Plan:
        if name is None:
            raise InvalidParameter(f"name: required to adopt {ref!r} (the volume's name in this store)", "name")
        if self.params.get("revert_to") is not None:
            raise InvalidParameter("revert_to: not with source.existing (adopt the volume first)", "revert_to")
        found_id = own_id(ref)
        if found_id is not None:
            holder = self.records.get(VOLUME, found_id)
            if holder is not None:
                raise Conflict(f"source.existing: {ref!r} is already volume {holder.name!r} ({holder.id}) of this "
                               "store; nothing was changed", "source.existing")
            if volume_id is not None and volume_id != found_id:
                raise Conflict(f"id: {ref!r} is the object of volume id {found_id}; give that id or none",
                               "id")
        elif not self.params["source"].get("rename"):
            raise Conflict(f"source.existing: {ref!r} is not named as this collection names volumes "
                           "(volume-<id>); set source.rename: true to rename it so on the backend (what uses it by "
                           "its old name loses it); nothing was changed", "source.rename")
        found, grow = {"name": ref, "size": None}, ""
        if self.on_host and self.driver is not None:  # the object is read only where the backend is
            found["size"], size, grow = self._inspect_adopted(ref, size)
        volume = Volume(
            id=found_id or volume_id or self._next_id(), name=name, backend=self.records.backend, size=size or 0,
            status=AVAILABLE, description=self.params.get("description") or "",
            metadata=copy.deepcopy(self.params.get("metadata") or {}),
            multiattach=bool(self.params.get("multiattach")))
        renamed = "" if found_id else f", renamed to volume-{volume.id}"
        step = Step("adopt", volume, found, message=f"adopt {ref!r} as volume {name!r} of {size} GiB{renamed}{grow}")
        return Plan([step], None, self.view(volume))

    def _inspect_adopted(self, ref: str, size: int | None) -> tuple[int, int, str]:
        """(its bytes, the volume's size in GiB, what growing it says) of the object to adopt, or a refusal."""
        found = self.driver.find_existing(ref)
        if found is None:
            raise NotFound(f"source.existing: no object {ref!r} on backend {self.records.backend!r} "
                           f"({', '.join(f'{k} {v!r}' for k, v in self.driver.locator().items())})",
                           "source.existing")
        marker, owner = self.driver.read_owner(), self.driver.owner
        # As Driver.refuse_foreign_owner: no owner known (check mode before this store's first task on the
        # backend) is decided by the real run's claim; a store from before markers (adopted) is let through.
        if self.driver.owned_elsewhere(marker) and owner is not None and not owner.get("adopted"):
            raise Conflict(f"source.existing: {found['object']} is on a backend that belongs to another state store, "
                           f"{marker.get('store')!r} (as its backend {marker.get('backend')!r}); forget it there "
                           "(state: absent, keep_storage: true) and move it out, or manage it with that store; "
                           "nothing was changed", "source.existing")
        actual = found["size"]
        least = max(1, -(-actual // GiB))
        if size is None:
            if actual % GiB or not actual:
                raise Conflict(f"size: {found['object']} is {actual} bytes, not a whole number of GiB; give size: "
                               f"{least} (or more) to grow it to that size as it is adopted", "size")
            size = actual // GiB
        elif size * GiB < actual:
            raise Conflict(f"size: {found['object']} is {actual} bytes, more than {size} GiB; volumes do not "
                           f"shrink, so nothing was changed: give size: {least} or more", "size")
        grow = f", grown from {actual} bytes" if size * GiB > actual else ""
        return actual, size, grow

    def _plan_forget(self, existing: Volume | None) -> Plan:
        if existing is None:
            return Plan([], None, None)
        connections = self.records.find(CONNECTION, volume_id=existing.id)
        if connections:
            hosts = ", ".join(sorted({c.host or c.id for c in connections}))
            raise Conflict(f"keep_storage: volume {existing.name!r} is connected to {hosts}; detach it first "
                           "(storage_attachment state: detached): the connections of a forgotten volume could not "
                           "be removed any more (force does not apply here)", "keep_storage")
        snapshots = self.records.find(SNAPSHOT, volume_id=existing.id)
        if snapshots and not self.params.get("cascade"):
            names = ", ".join(sorted(repr(s.name) for s in snapshots))
            raise Conflict(f"volume {existing.name!r} has snapshots {names}; set cascade: true to forget them with "
                           "the volume (their storage is kept too), or delete them first", "cascade")
        for obj in (existing, *snapshots):
            if obj.status != AVAILABLE:
                raise Conflict(f"keep_storage: {obj.kind} {obj.name!r} ({obj.id}) is {obj.status}; only available "
                               "volumes and snapshots are forgotten: finish or undo its task first", "keep_storage")
        steps = [Step("forget_snapshot", s, message=f"forget snapshot {s.name!r} ({s.id}), keeping its storage")
                 for s in snapshots]
        steps.append(Step("forget", existing, message=f"forget volume {existing.name!r} ({existing.id}), keeping "
                          f"its storage (volume-{existing.id} on the backend)"))
        return Plan(steps, self.view(existing), None)

    def _refuse_other_object(self, existing: Volume, ref: str | None) -> None:
        """An adopt naming a volume that exists is done when the object is that volume's; else refused."""
        objects = (f"volume-{existing.id}", (existing.driver_data or {}).get("adopted_from"))
        if ref is not None and ref not in objects:
            raise Conflict(f"source.existing: volume {existing.name!r} ({existing.id}) already exists and {ref!r} is "
                           f"not its object; give another name to adopt {ref!r}; nothing was changed",
                           "source.existing")
