# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan engine: Step, Plan, Action (the step table) and Resource; it knows no resource kind.

`plan()` is a pure function of (task parameters, records): it validates the
parameters, decides the steps and simulates the result, so check mode and diff
are honest and the controller can compute the same plan to write the pending
records (status creating/extending/deleting) before the storage work starts.
`execute()` runs the steps on a driver; each step either completes and stores
its record, or undoes what it began and leaves the record as it was (a failed
delete is kept visible as error_deleting).

Each resource kind (volumes.py, snapshots.py, attachments.py) declares its steps
in one table, `ACTIONS`: step name -> Action (the function that runs it, the
status its record carries while it runs, whether it creates or deletes).
New objects take their ids from `new_ids` so that the controller's plan and the
module's plan name the same objects.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from .drivers.base import Driver
from .errors import BlockstoreError, Conflict, DriverError, InvalidParameter
from .handler import Handler, Task
from .host_devices import LocalHost
from .objects import (
    AVAILABLE,
    CONNECTION,
    ERROR,
    ERROR_DELETING,
    RESUMED_DELETE,
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
from .transaction import perform, run_task
from .units import GiB

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

STATES = ("present", "absent")
# driver_data key of a record marked error because its backend object was found missing: the time and
# the status it had. Such a record is never re-created empty by a re-run (data was expected there).
MISSING = "missing_on_backend"


def is_missing(obj: Any) -> bool:
    """Whether the record was marked error because its backend object was found missing."""
    return obj.status == ERROR and MISSING in (obj.driver_data or {})


@dataclasses.dataclass
class Step:
    action: str
    target: Any
    source: Any = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Action:
    """One row of a resource kind's step table."""

    run: Callable[[Any, Step, Driver], None]
    # Status the target's record carries while the step runs: written before it, so a crash leaves it visible.
    pending: str | None = None
    # What a failed create began is removed again (`undo(driver, target)`); its id is reserved by the controller.
    creates: bool = False
    undo: Callable[[Driver, Any], None] | None = None
    # The target's record goes when the step succeeds; a failed one is kept as error_deleting (error: connections).
    deletes: bool = False
    # The step works on this host's devices or on records only: the backend is not set up for it
    # (Driver.check_setup would create a file backend's directory on a consumer host).
    host_only: bool = False
    # A failed step may have half changed the data (a revert): its record keeps the pending status, so the
    # next run redoes the step, instead of going back to a status that would claim the old data.
    failure_keeps_pending: bool = False


def store_target(resource: Resource, step: Step, driver: Driver) -> None:
    """The step of a change that is only in the record (rename, metadata, a status)."""


def made_from_source(resource: Resource, step: Step, data: tuple[dict, dict]) -> None:
    """Record what a driver made from a source (a clone, a snapshot): the new object's driver_data,
    and the source's, which the driver may have changed (a frozen image, a protected snapshot)."""
    step.target.driver_data, source_data = data
    step.target.status = AVAILABLE
    if source_data != step.source.driver_data:
        step.source.driver_data = source_data
        resource.records.put(step.source)


def half_made(driver: Driver, target: Any, source: Any) -> None:
    """Give `target`, made from `source`, the driver_data its create would have recorded, before
    the create runs (a failed one is undone with it) and before a delete (of what a killed task
    left): undoing it then removes what that create began and keeps the source whole."""
    if source is not None:
        target.driver_data = driver.half_made_data(target, source)


@dataclasses.dataclass
class Plan:
    steps: list[Step]
    before: dict | None
    after: dict | None
    # The step table of the resource that made the plan (Resource.plan sets it).
    actions: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def pending(self) -> list[dict]:
        """Records to write before the storage work, in their transient status."""
        records = []
        for step in self.steps:
            status = self.actions[step.action].pending
            if status:
                obj = copy.deepcopy(step.target)
                obj.status = status
                records.append(dataclasses.asdict(obj))
        return records

    def new_ids(self) -> list[str]:
        return [s.target.id for s in self.steps if self.actions[s.action].creates]


def check_id(value: object, option: str = "id") -> str | None:
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


def by_ref(store: Store, backend: str, kind: str, ref: object) -> list[dict]:
    """Records of `kind` named by `ref`, a name or an id."""
    if not isinstance(ref, str) or not ref:
        return []
    if is_uuid(ref.lower()):
        return store.find(backend, kind, id=ref.lower())
    return store.find(backend, kind, name=ref)


class Resource(Handler):
    """CRUD with check-mode simulation: the engine every resource kind runs on."""

    kind: ClassVar[str] = ""
    claims_backend = True
    # A task with nothing to do checks its object on the backend where the module runs (check_on_backend).
    noop_checks_backend = True
    # step name -> Action; each kind declares its own.
    ACTIONS: ClassVar[dict[str, Action]] = {}

    def __init__(self, records: RecordSet, params: dict, new_ids: list[str] | None = None,
                 host: LocalHost | None = None, driver: Driver | None = None) -> None:
        self.records = records
        # The backend's driver, for what its capabilities decide in a plan (None: not known here).
        self.driver = driver
        self.params = params
        self._new_ids = list(new_ids or [])
        # Until execute() runs (check mode), the result shows the plan's simulation.
        self.executed = False
        self.on_host = False  # True where the module runs (prepare()); host facts can be read there
        self.host = host or LocalHost()

    def _next_id(self) -> str:
        return self._new_ids.pop(0) if self._new_ids else new_id()

    def prepare(self) -> None:
        """Called where the module runs, before plan(): host facts can be read from here on."""
        self.on_host = True

    # the handler contract -------------------------------------------------
    @classmethod
    def on_store(cls, task: Task, store: Store, ship: Callable, answer_noop: Callable | None = None) -> dict:
        return run_task(store, cls, task.backend, task.params, task.check_mode, ship, answer_noop, driver=task.driver)

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, dict]:
        return perform(cls, task.driver, task.params, task.records or [], task.new_ids, task.check_mode,
                       host=task.host)

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        raise NotImplementedError

    # planning -----------------------------------------------------------
    def plan(self) -> Plan:
        plan = self.make_plan()
        plan.actions = self.ACTIONS
        return plan

    def make_plan(self) -> Plan:
        raise NotImplementedError

    def needs_backend_setup(self, plan: Plan) -> bool:
        """Whether a step of `plan` works on the backend (so the backend is set up and checked first)."""
        return any(not self.ACTIONS[step.action].host_only for step in plan.steps)

    def view(self, obj: Any) -> dict:
        return public_view(obj) or {}

    def _identity(self) -> tuple[str | None, str | None]:
        params = self.params
        name = check_name(params["name"]) if params.get("name") is not None else None
        object_id = check_id(params.get("id"))
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
        if existing.status in RESUMED_DELETE:
            raise Conflict(
                f"{self.kind} {existing.name!r} ({existing.id}) is in status {existing.status}: a delete was "
                "interrupted or failed. Run the task with state: absent to finish it, then create it again.")

    def _finish(self, existing: Volume | Snapshot, target: Volume | Snapshot, steps: list[Step],
                changes: list[str]) -> Plan:
        """The plan of a task on an existing object: its steps, then the record-only changes."""
        if changes:
            steps.append(Step("update", target, message=f"{self.kind} {existing.name!r}: {', '.join(changes)}"))
        if not steps:
            return Plan([], self.view(existing), self.view(existing))
        return Plan(steps, self.view(existing), self.view(target))

    # the backend's truth --------------------------------------------------
    def verifies_backend(self) -> bool:
        """Whether this plan checks the task's object on the backend: where the module runs, with a
        driver that can tell (docs/performance.md: `blockstore_noop_answer`)."""
        return self.on_host and self.driver is not None and self.driver.can_verify

    def backend_confirms(self, plan: Plan) -> bool:
        """Whether a plan with no steps may be answered without the module, as far as the controller can
        see: always when the task chose the store's answer (the driver has no `probe_on_host`); else only
        when the driver's probe of the object, run on the task's host, agrees with its record. Anything
        else (no probe for this driver, a probe that failed, a difference) sends the task to the module,
        whose check says what differs and acts on it."""
        probe = self.driver.probe_on_host if self.driver is not None else None
        if probe is None or not self.noop_checks_backend or not plan.before:
            return True
        existing = self.records.get(self.kind, plan.before["id"])
        request = self.driver.probe_request(existing) if existing is not None else None
        if request is None:
            return False
        reports = probe([request])
        try:
            return self.agrees_with_backend(existing, self.driver.inspect_from_probe(existing, reports[0]))
        except (KeyError, IndexError, TypeError, ValueError):  # not a report probe.py makes
            return False

    def agrees_with_backend(self, existing: Volume | Snapshot, found: dict) -> bool:
        """Whether `found` (inspect_volume's or inspect_snapshot's answer) is what the module's check
        accepts with nothing to do or record: there, not marked missing, of its record's format and size."""
        recorded = (existing.driver_data or {}).get("format")
        same_format = not found.get("format") or not recorded or found["format"] == recorded
        same_size = found.get("size") is None or found["size"] == existing.size * GiB
        return bool(found["exists"]) and not is_missing(existing) and same_format and same_size

    def check_on_backend(self, existing: Volume | Snapshot, target: Volume | Snapshot,
                         found: dict) -> list[str]:
        """The record-only changes a stable or missing-marked record needs once its object was inspected
        (`found`: Driver.inspect_volume's shape); raises, with the record marked error, when it is gone."""
        if not found["exists"]:
            if not is_missing(existing):
                marked = copy.deepcopy(existing)
                marked.driver_data = dict(marked.driver_data or {},
                                          **{MISSING: {"since": now(), "status": existing.status}})
                marked.status = ERROR
                marked.updated_at = now()
                self.records.put(marked)
            again = "empty" if self.kind == VOLUME else "of its volume as it is now"
            raise Conflict(
                f"{self.kind} {existing.name!r} ({existing.id}) on backend {self.records.backend!r}: "
                f"{found['object']} is missing from the backend (removed outside the collection?); its record is "
                f"marked error and nothing was created in its place. To recover: put the object back and run the "
                f"task again, or remove the record with state: absent and create the {self.kind} again "
                f"({again})")
        if is_missing(existing):
            restored = existing.driver_data[MISSING].get("status") or AVAILABLE
            target.status = restored
            target.driver_data = {k: v for k, v in existing.driver_data.items() if k != MISSING}
            return [f"{found['object']} is on the backend again, status {restored}"]
        return []

    # execution ----------------------------------------------------------
    def execute(self, plan: Plan, driver: Driver) -> None:
        self.executed = True
        for step in plan.steps:
            action = self.ACTIONS[step.action]
            before = self.records.get(step.target.kind, step.target.id)
            try:
                action.run(self, step, driver)
            except (BlockstoreError, OSError) as exc:
                self._undo(step, action, before, driver)
                if isinstance(exc, OSError):
                    raise DriverError(f"{self.kind}: {step.message} failed: {exc}") from None
                raise
            if action.deletes:
                self.records.remove(step.target)
            else:
                step.target.updated_at = now()
                self.records.put(step.target)

    def _undo(self, step: Step, action: Action, before: Any, driver: Driver) -> None:
        """Leave no half state: remove what a failed create began; keep a failed delete visible."""
        if action.creates:
            try:
                action.undo(driver, step.target)
            except (BlockstoreError, OSError):
                pass  # the record stays 'creating' via the store's pending copy; a re-run retries
            else:
                self.records.remove(step.target)
        elif action.deletes:
            step.target.status = ERROR if step.target.kind == CONNECTION else ERROR_DELETING
            self.records.put(step.target)
        elif action.failure_keeps_pending:
            step.target.status = action.pending
            self.records.put(step.target)
        elif before is not None:
            self.records.put(before)

    # result -------------------------------------------------------------
    def shown(self, plan: Plan) -> dict | None:
        """The object the result shows: after execute() the stored outcome, else the plan's."""
        if plan.after is None:
            return dict(plan.before or {}, status="deleted") if plan.before else None
        current = self.records.get(self.kind, plan.after["id"]) if self.executed else None
        return self.view(current) if current is not None else plan.after

    def result(self, plan: Plan) -> dict:
        """What the module returns."""
        return {
            "changed": plan.changed,
            "actions": [s.message for s in plan.steps],
            self.result_key: self.shown(plan),
            "diff": {"before": plan.before or {}, "after": plan.after or {}},
        }
