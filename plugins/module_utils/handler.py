# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one handler contract every module's work follows, and dispatch(), which runs it on either side.

A handler declares what it needs and where it runs; it has two halves:

  on_store(task, store, ship)  where the store is (the controller, or a module run alone):
                               select the records, lock, write pending records, and have
                               `ship(records, new_ids)` run the host half with them
  on_host(task)                where Ansible runs the module: the storage and host work on
                               the records it was sent; returns (result, changes)

The action plugin (plugin_utils/state_bridge.py) calls dispatch() with a `ship` that runs
the module; the module (runner.py) calls it with the records it was sent, or, run without
the action plugin, with a store of its own and no `ship`: then both halves run here.

Secrets: records hold secret fields sealed (sealing.py). `SecretGate` is the one place they
are opened for a handler that declares `needs_secrets`, and sealed again on the way out;
it sits in front of every host half (`_on_host`), so moving it to the controller is a
matter of calling the same gate in dispatch's controller branch instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from .backend_identity import owner_of, release_if_empty, save, settle
from .drivers.base import Driver
from .errors import BlockstoreError
from .host_devices import LocalHost

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store
    from .sealing import Sealer

# Where a handler's work runs.
HOST, CONTROLLER = "host", "controller"
# Internal parameter the action plugin sets when it splits a task between the backend's host (its
# backend-side steps) and the task's host (docs/architecture.md): HOST_HALF plans only the steps on
# this host's devices, and refuses a backend-side one.
HALF_PARAM, HOST_HALF = "_blockstore_half", "host"
# Runs the host half with (records, new ids); returns (result, changes), changes None when the
# outcome is unknown (the module process died).
Ship = Callable[[list, list], "tuple[dict, dict | None]"]
# Turns the result of a plan with no steps into the task's result, in place of shipping.
NoopAnswer = Callable[[dict], dict]


@dataclasses.dataclass
class Task:
    """One task's inputs, on either side."""

    params: dict
    check_mode: bool = False
    driver: Driver | None = None
    # Sent by the controller (None on the store side until selected).
    records: list[dict] | None = None
    new_ids: list[str] = dataclasses.field(default_factory=list)
    # The key to sealed secrets; only for handlers that need them.
    sealer: Sealer | None = None
    # This host's devices and facts: a stand-in in unit tests of pure logic.
    host: LocalHost = dataclasses.field(default_factory=LocalHost)

    @property
    def backend(self) -> str:
        return self.driver.backend_name


class Handler:
    """What a module does, declared once: where it runs, what it needs, where its result goes."""

    # HOST: the work runs where Ansible runs the module; CONTROLLER: where the store is, never shipped.
    runs_on: ClassVar[str] = HOST
    # Builds a driver from the task's `backend` option.
    needs_backend: ClassVar[bool] = True
    # Works on records of the store (selected on the store side, sent to the host side).
    needs_store: ClassVar[bool] = True
    # The host half needs the records' secrets in clear (handed to drivers and connectors): it is
    # sent the key when the records hold sealed secrets (`wants_key`).
    needs_secrets: ClassVar[bool] = False
    # The host half makes secrets (connection credentials) and seals them before they leave it.
    makes_secrets: ClassVar[bool] = False
    # The result's key for the object(s) it shows.
    result_key: ClassVar[str] = ""
    # True when a task with nothing to do needs nothing from the host: the action plugin then
    # answers it from the store without shipping the module (docs/performance.md).
    noop_on_controller: ClassVar[bool] = False
    # The task may change the backend: its first run writes the backend's identity record
    # (backend_identity.py); other tasks only check it.
    claims_backend: ClassVar[bool] = False
    # True when the host half of such a task checks its object on the backend: then it is answered
    # from the store only on request (`blockstore_noop_answer: store`).
    noop_checks_backend: ClassVar[bool] = False

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        """The records the task needs, read on the store side."""
        return []

    @classmethod
    def wants_key(cls, records: list[dict] | None) -> bool:
        """Whether the host half, sent these records, needs the key to sealed secrets."""
        if cls.makes_secrets:
            return True
        if not cls.needs_secrets or not records:
            return False
        from .sealing import holds_sealed
        return holds_sealed(records)

    @classmethod
    def on_store(cls, task: Task, store: Store, ship: Ship, answer_noop: NoopAnswer | None = None) -> dict:
        records = cls.select(store, task.backend, task.params)
        if answer_noop is not None and cls.noop_on_controller:
            return answer_noop(cls.on_host(dataclasses.replace(task, records=records))[0])
        return ship(records, [])[0]

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, dict | None]:
        raise NotImplementedError


class SecretGate:
    """Opens the secrets of the records a host half works on, and seals what it hands back."""

    def __init__(self, sealer: Sealer | None) -> None:
        self.sealer = sealer  # None: nothing to open (the store seals what comes back)

    def open(self, records: list[dict] | None) -> list[dict] | None:
        if self.sealer is None or records is None:
            return records
        return [self.sealer.unseal_tree(r) for r in records]

    def close(self, changes: dict | None) -> dict | None:
        if self.sealer is None or not changes:
            return changes
        return dict(changes, upserts=[self.sealer.seal_tree(r) for r in changes.get("upserts", [])])


def _on_host(handler: type[Handler], task: Task) -> tuple[dict, dict | None]:
    """The host half behind the secret gate."""
    gate = SecretGate(task.sealer if handler.needs_secrets else None)
    task = dataclasses.replace(task, records=gate.open(task.records))
    try:
        result, changes = handler.on_host(task)
    except BlockstoreError as exc:
        exc.changes = gate.close(getattr(exc, "changes", None))
        raise
    return result, gate.close(changes)


def dispatch(handler: type[Handler], task: Task, store: Store | None = None, ship: Ship | None = None,
             answer_noop: NoopAnswer | None = None) -> tuple[dict, Any]:
    """Run `handler` for `task` on the side that calls it; returns (result, changes for the store).

    - `ship` given: the controller side; the host half runs wherever `ship` runs it.
    - `store` given, no `ship`: a module run without the action plugin; both halves run here.
    - neither: the host side, with `task.records` sent by the controller.
    """
    if store is not None and handler.needs_store and task.driver is not None:
        # Before any plan: a backend name whose options locate other data is refused here.
        record, unsaved = settle(store, task.driver, claim=handler.claims_backend and not task.check_mode)
        task.driver.owner = owner_of(store, record)
    else:
        unsaved = None
    if ship is not None:
        if not handler.needs_store:
            return ship(None, [])[0], None
        with _identity_kept(store, task, unsaved) as watched:
            return handler.on_store(task, store, watched(ship), answer_noop), None
    if store is not None and handler.needs_store:
        def here(records: list, new_ids: list) -> tuple[dict, dict | None]:
            sealer = store.sealer if handler.wants_key(records) else None
            return _on_host(handler, dataclasses.replace(task, records=records, new_ids=new_ids, sealer=sealer))
        with _identity_kept(store, task, unsaved) as watched:
            return handler.on_store(task, store, watched(here)), None
    return _on_host(handler, task)


@contextlib.contextmanager
def _identity_kept(store: Store, task: Task, unsaved: dict | None) -> Iterator[Callable[[Ship], Ship]]:
    """Wraps the host half's runner, to keep the backend's identity record (backend_identity.py) with its
    object records: written with the first of them (even by a task that then failed), gone with the last."""
    upserted, deleted = [], []

    def watched(run: Ship) -> Ship:
        def watching(records: list, new_ids: list) -> tuple[dict, dict | None]:
            try:
                result, changes = run(records, new_ids)
            except BlockstoreError as exc:
                changes = getattr(exc, "changes", None)
                upserted.append(bool(changes and changes.get("upserts")))
                raise
            upserted.append(bool(changes and changes.get("upserts")))
            deleted.append(bool(changes and changes.get("deletes")))
            return result, changes
        return watching

    try:
        yield watched
    finally:
        if unsaved is not None and any(upserted):
            save(store, unsaved)
    if any(deleted) and not any(upserted):
        release_if_empty(store, task.backend)
