# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots (storage_snapshot): create one of a volume, update, delete, prune by retention, and group snapshots.

The plan is made by plan.Resource's engine; this file says which steps a snapshot task
has (`SnapshotResource.ACTIONS`) and how each runs on the driver. Retention (`retention`)
decides in `sort_out`, a pure function of the snapshots, the rules and the time. Group
snapshots (`group` + `volumes`) are planned in group_snapshots.py.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import TYPE_CHECKING, Callable, ClassVar

from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .group_snapshots import GroupSnapshots
from .host_devices import refuse_held_open
from .objects import (
    AVAILABLE,
    CONNECTION,
    CREATING,
    DELETING,
    ERROR,
    IN_USE,
    SNAPSHOT,
    VOLUME,
    Snapshot,
    is_uuid,
)
from .plan import Action, Plan, Resource, Step, by_ref, half_made, is_missing, made_from_source, store_target
from .sealing import mask
from .units import parse_age

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


# retention ----------------------------------------------------------------
RETENTION_OPTIONS = ("prefix", "keep", "max_age")


@dataclasses.dataclass(frozen=True)
class Retention:
    """Which of a volume's snapshots a task may prune (`prefix`) and which of those it keeps."""

    prefix: str
    keep: int | None = None
    max_age: int | None = None  # seconds
    max_age_text: str = ""


def check_retention(value: object) -> Retention | None:
    """The task's `retention` option, checked; None when not given."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter("retention: must be a dict with prefix and keep and/or max_age", "retention")
    unknown = sorted(set(value) - set(RETENTION_OPTIONS))
    if unknown:
        raise InvalidParameter(f"retention: unknown option(s) {', '.join(map(str, unknown))}; known are "
                               f"{', '.join(RETENTION_OPTIONS)}", "retention")
    prefix = value.get("prefix")
    if not isinstance(prefix, str) or not prefix.strip():
        raise InvalidParameter("retention.prefix: required, a non-empty start of the names of the snapshots "
                               "retention may prune (snapshots named otherwise are never pruned)",
                               "retention.prefix")
    keep = value.get("keep")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise InvalidParameter(f"retention.keep: {keep!r} is not a whole number of snapshots of at least 1",
                               "retention.keep")
    max_age_text = value.get("max_age")
    max_age = None if max_age_text is None else parse_age(max_age_text, "retention.max_age")
    if keep is None and max_age is None:
        raise InvalidParameter("retention: give keep, max_age or both (with neither, nothing would be pruned)",
                               "retention")
    return Retention(prefix, keep, max_age, max_age_text or "")


def _created(snapshot: Snapshot) -> datetime.datetime | None:
    text = snapshot.created_at or ""
    try:
        created = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=datetime.timezone.utc)


def sort_out(snapshots: list[Snapshot], retention: Retention, at: datetime.datetime,
             dependants: Callable[[Snapshot], list[str]], own_id: str | None = None,
             ) -> tuple[list[tuple[Snapshot, str]], list[tuple[Snapshot, str]]]:
    """(to prune, kept), each a list of (snapshot, why), of the snapshots whose names start with the prefix.

    A snapshot is pruned only when no rule keeps it: it is not one of the `keep` newest available ones
    (by creation time, then by name; the task's own counts as the newest) and not younger than `max_age`.
    Never pruned whatever its age: the task's own snapshot (`own_id`), one not available (creating,
    error...: a task for it is unfinished), a group snapshot's member, one whose creation time cannot be
    read, one with volumes that share its data (`dependants` names them).
    """
    matching = [s for s in snapshots if s.name.startswith(retention.prefix)]
    # The task's own snapshot is the newest, even when others share its second.
    matching.sort(key=lambda s: (s.id == own_id, s.created_at or "", s.name), reverse=True)
    prune: list[tuple[Snapshot, str]] = []
    kept: list[tuple[Snapshot, str]] = []
    rank = 0
    for snap in matching:
        created = _created(snap)
        if snap.status != AVAILABLE:
            kept.append((snap, f"status {snap.status}, not available"))
            continue
        if snap.group:  # pruned alone, it would leave its group without this volume
            kept.append((snap, f"a member of group snapshot {snap.group!r} (deleted with its group: group and "
                               "state: absent)"))
            continue
        if created is None:
            kept.append((snap, f"creation time {snap.created_at!r} cannot be read"))
            continue
        rank += 1
        if snap.id == own_id:
            kept.append((snap, "the snapshot this task takes"))
            continue
        if retention.keep is not None and rank <= retention.keep:
            kept.append((snap, f"one of the newest {retention.keep}"))
            continue
        age = (at - created).total_seconds()
        if retention.max_age is not None and age < retention.max_age:
            kept.append((snap, f"younger than {retention.max_age_text}"))
            continue
        made = dependants(snap)
        if made:
            kept.append((snap, f"volume(s) {', '.join(made)} made from it share its data (delete or flatten "
                               "them first)"))
            continue
        why = []
        if retention.keep is not None:
            why.append(f"not one of the newest {retention.keep}")
        if retention.max_age is not None:
            why.append(f"older than {retention.max_age_text}")
        prune.append((snap, " and ".join(why)))
    return prune, kept


def _listed(pairs: list[tuple[Snapshot, str]], key: str) -> list[dict]:
    return [{"id": s.id, "name": s.name, "created_at": s.created_at, key: why} for s, why in pairs]


class SnapshotResource(GroupSnapshots):
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
        names = {VOLUME: [params.get("volume")], SNAPSHOT: [params.get("name")]}
        group, volumes = params.get("group"), params.get("volumes")
        if isinstance(group, str) and group:
            # Two tasks on one group serialize on its name, whatever volumes they list.
            names[SNAPSHOT].append(f"{group}/")
            if isinstance(volumes, list):
                names[VOLUME] += [v for v in volumes if isinstance(v, str)]
                names[SNAPSHOT] += [f"{group}/{v}" for v in volumes if isinstance(v, str) and not is_uuid(v.lower())]
        return names

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        found = by_ref(store, backend, SNAPSHOT, params.get("id")) + by_ref(
            store, backend, SNAPSHOT, params.get("name"))
        found += [v for s in found for v in store.find(backend, VOLUME, id=s["volume_id"])]
        volumes = by_ref(store, backend, VOLUME, params.get("volume"))
        group = params.get("group")
        if isinstance(group, str) and group:
            members = store.find(backend, SNAPSHOT, group=group)
            found += members
            found += [v for s in members for v in store.find(backend, VOLUME, id=s["volume_id"])]
            refs = params.get("volumes") if isinstance(params.get("volumes"), list) else []
            listed = [v for ref in refs for v in by_ref(store, backend, VOLUME, ref)]
            # A snapshot that already has a member's name (made by hand) is refused by the plan.
            found += listed + [s for v in listed for s in store.find(backend, SNAPSHOT, name=f"{group}/{v['name']}")]
        found += volumes
        if params.get("retention") is not None:
            # Retention looks at every snapshot of the volume, and at the volumes made from each.
            snapshots = [s for v in volumes for s in store.find(backend, SNAPSHOT, volume_id=v["id"])]
            found += snapshots
            found += [d for s in snapshots for d in store.find(backend, VOLUME, source_snapshot_id=s["id"])]
        found += [c for v in found if v["kind"] == VOLUME for c in store.find(backend, CONNECTION, volume_id=v["id"])]
        return list({r["id"]: r for r in found}.values())

    @classmethod
    def host_records(cls, records: list[dict], params: dict, whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
        """Connections are read for what they show (a device holding the image open), never for their
        credentials: sent masked, and never written back."""
        sent = [mask(r) if r["kind"] == CONNECTION else r for r in records]
        return sent, {r["id"] for r in records if r["kind"] == CONNECTION}

    # The retention of the last plan (None: not asked for); its plan sets what it prunes and keeps.
    retention: Retention | None = None

    def make_plan(self) -> Plan:
        self.retention = check_retention(self.params.get("retention"))
        self.pruned: list[dict] = []
        self.kept: list[dict] = []
        self.group = None
        if self.params.get("group") is not None:
            return self._plan_group()
        if self.params.get("volumes") is not None:
            raise InvalidParameter("volumes: only with group (a group snapshot of these volumes); for one "
                                   "volume use volume", "volumes")
        if self.retention is None:
            return self._plan_one()
        return self._plan_retention(self.retention)

    def _plan_retention(self, retention: Retention) -> Plan:
        """The task's own snapshot (if it names one), then the prune steps."""
        if self.params.get("state", "present") != "present":
            raise InvalidParameter("retention: only with state: present (it prunes after the snapshot is taken)",
                                   "retention")
        volume_ref = self.params.get("volume")
        if not isinstance(volume_ref, str) or not volume_ref:
            raise InvalidParameter("volume: required with retention (the volume whose snapshots it prunes)",
                                   "volume")
        if self.params.get("name") is None and self.params.get("id") is None:
            plan = Plan([], None, None)  # prune only
            own = None
        else:
            plan = self._plan_one()
            # The snapshot as the task leaves it (made, finished or renamed), else as it is.
            planned = [s.target for s in plan.steps if s.action in ("create_snapshot", "update")]
            own = planned[-1] if planned else self.records.get(SNAPSHOT, (plan.after or {}).get("id", ""))
        if own is not None and not own.name.startswith(retention.prefix):
            raise InvalidParameter(f"retention.prefix: the task's snapshot {own.name!r} does not start with "
                                   f"{retention.prefix!r}; retention would not count it among the newest",
                                   "retention.prefix")
        volume = self.records.lookup(VOLUME, volume_ref, "volume")
        snapshots = [s for s in self.records.find(SNAPSHOT, volume_id=volume.id) if own is None or s.id != own.id]
        if own is not None:
            snapshots.append(own)

        def dependants(snapshot: Snapshot) -> list[str]:
            if self.driver is not None and not self.driver.volumes_share_snapshot_data(snapshot):
                return []
            return sorted(repr(v.name) for v in self.records.find(VOLUME, source_snapshot_id=snapshot.id))

        at = datetime.datetime.now(datetime.timezone.utc)
        prune, kept = sort_out(snapshots, retention, at, dependants, own.id if own is not None else None)
        self.pruned, self.kept = _listed(prune, "reason"), _listed(kept, "reason")
        for snap, why in prune:
            plan.steps.append(Step("delete_snapshot", snap, message=f"prune snapshot {snap.name!r} ({snap.id}): "
                                                                    f"{why}"))
        return plan

    def result(self, plan: Plan) -> dict:
        if self.group is not None:
            return self.group_result(plan)
        result = super().result(plan)
        if self.retention is not None:
            result["pruned"], result["kept"] = self.pruned, self.kept
            # One diff per object (Ansible shows a list of diffs one after the other): the task's snapshot,
            # then each pruned one going away.
            own = [result["diff"]] if plan.before or plan.after else []
            gone = [{"before": self.view(s.target), "after": {}, "before_header": f"snapshot {s.target.name}",
                     "after_header": "pruned"} for s in plan.steps if s.action == "delete_snapshot"]
            result["diff"] = own + gone
        return result

    def _plan_one(self) -> Plan:
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
        snapshot = self._new_snapshot(name, volume, snapshot_id)
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
