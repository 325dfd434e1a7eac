# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One task against the state store: select, lock, plan, write pending, run, merge.

The storage work (`perform`) runs where Ansible runs the module; everything else
runs where the store is (the controller, through the action plugin, or in the
module itself when no action plugin is involved). Both paths use `run_task`.
`resource_cls` is a plan.Resource; this file does not import it, so that the
engine can call down into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .drivers.base import Driver
from .errors import BlockstoreError, NotFound, StateStoreError
from .objects import RecordSet

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

# An executor takes (records, new ids) and returns (result, changes); changes is
# None when the outcome is unknown (the module process died).
Executor = Callable[[list, list], "tuple[dict, dict | None]"]
# Turns the result of a plan with no steps into the task's result, in place of the executor.
NoopAnswer = Callable[[dict], dict]
MAX_LOCK_ROUNDS = 10
# Check mode creates nothing, so a later task of the same run that uses what an earlier one would
# create finds nothing: said in the error, since the store cannot tell a typo from a planned object.
CHECK_MODE_NOTE = ("; in check mode an object that an earlier task of this run would create was only planned, "
                   "not created: skip the tasks that use it with when: not ansible_check_mode (docs/user-guide.md)")


def note_check_mode(exc: BlockstoreError, check_mode: bool) -> None:
    """Add CHECK_MODE_NOTE to a not-found error raised in check mode (once)."""
    if check_mode and isinstance(exc, NotFound) and CHECK_MODE_NOTE not in exc.msg:
        exc.msg += CHECK_MODE_NOTE


def lock_keys(backend: str, records: list[dict], names: dict[str, list[str]]) -> set[str]:
    """Keys that serialize tasks on the same objects, whether named by name or by id."""
    keys = {f"{backend}:{kind}:name:{name}" for kind, values in names.items() for name in values if name}
    for record in records:
        keys.add(f"{backend}:{record['kind']}:id:{record['id']}")
        if record.get("name"):
            keys.add(f"{backend}:{record['kind']}:name:{record['name']}")
    return keys


def perform(resource_cls: Any, driver: Driver, params: dict, records: list[dict],
            new_ids: list[str], check_mode: bool, host: Any = None) -> tuple[dict, dict]:
    """Plan and (unless check mode) apply; the module side of a task.

    A BlockstoreError raised here carries `.changes`: what was stored despite the
    failure (undo results, error_deleting), so the store ends up truthful.
    """
    resource = resource_cls(RecordSet(driver.backend_name, records), params, new_ids, host=host, driver=driver)
    try:
        resource.prepare()
        plan = resource.plan()
        if plan.changed and not check_mode:
            if resource.needs_backend_setup(plan):
                driver.check_setup()
            resource.execute(plan, driver)
    except BlockstoreError as exc:
        # Check mode stores nothing, not even a record found wrong on the backend.
        exc.changes = {"upserts": [], "deletes": []} if check_mode else resource.records.changes()
        note_check_mode(exc, check_mode)
        raise
    return resource.result(plan), resource.records.changes()


def run_task(store: Store, resource_cls: Any, backend: str, params: dict, check_mode: bool,
             execute: Executor, answer_noop: NoopAnswer | None = None, driver: Driver | None = None) -> dict:
    """Run one task under locks on every object it touches, named by name or by id.

    With `answer_noop`, a task whose plan has no steps is answered from that plan
    (`answer_noop(result)`) and `execute` is not called: for resources whose
    `noop_on_controller` says such a task needs nothing from the host.
    """
    names = resource_cls.referenced_names(params)
    keys = lock_keys(backend, resource_cls.select(store, backend, params), names)
    for _round in range(MAX_LOCK_ROUNDS):
        with store.locked(keys):
            # Re-read under the lock: another task may have created or renamed.
            records = resource_cls.select(store, backend, params)
            needed = lock_keys(backend, records, names)
            if needed <= keys:
                try:
                    return _run_locked(store, resource_cls(RecordSet(backend, records), params, driver=driver),
                                       records, check_mode, execute, answer_noop)
                except BlockstoreError as exc:
                    note_check_mode(exc, check_mode)
                    raise
        keys |= needed
    raise StateStoreError("persistence: the objects of this task kept changing while it waited for their "
                          "locks; try again")


def _run_locked(store: Store, resource: Any, records: list[dict], check_mode: bool, execute: Executor,
                answer_noop: NoopAnswer | None = None) -> dict:
    # The same plan the module will make: validates everything before any write,
    # and names the records to write in their transient status first.
    plan = resource.plan()
    if answer_noop is not None and not plan.steps and resource.noop_on_controller and resource.backend_confirms(plan):
        # The module would make this same empty plan from these same records and return its
        # result: nothing to write, nothing to do on the host.
        return answer_noop(resource.result(plan))
    new_ids = plan.new_ids()
    from .persistence.base import refuse_id_clash  # the store side only: not imported where the module runs

    # An id given by the user may be another object's, of any kind or backend: refused here so that check
    # mode says so too (the store refuses such an upsert again, under its own lock).
    for record in plan.pending():
        if record["id"] in new_ids:
            refuse_id_clash(store.by_id(record["id"]), record)
    pending = [] if check_mode else plan.pending()
    if pending:
        store.apply(upserts=[store.sealer.seal_tree(r) for r in pending])
    try:
        result, changes = execute(records, new_ids)
    except BlockstoreError as exc:
        _merge(store, records, pending, getattr(exc, "changes", None))
        raise
    _merge(store, records, pending, changes)
    return result


def _merge(store: Store, records: list[dict], pending: list[dict], changes: dict | None) -> None:
    """Store the module's changes; put back pending records it did not touch.

    With no changes (the module died) pending records stay, visible in their
    transient status, and the next run of the task converges them.
    """
    if changes is None:
        return
    upserts = list(changes.get("upserts", []))
    deletes = list(changes.get("deletes", []))
    touched = {r["id"] for r in upserts} | {d["id"] for d in deletes}
    originals = {r["id"]: r for r in records}
    for record in pending:
        if record["id"] in touched:
            continue
        if record["id"] in originals:
            upserts.append(originals[record["id"]])
        else:
            deletes.append({"kind": record["kind"], "id": record["id"]})
    if upserts or deletes:
        # Modules seal what they make; this is the one gate every store's writes pass.
        store.apply(upserts=[store.sealer.seal_tree(r) for r in upserts], deletes=deletes)
