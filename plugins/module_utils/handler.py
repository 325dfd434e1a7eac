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

Secrets: records hold secret fields sealed with the store's key (sealing.py), and that key never
leaves the store's side. `SecretGate` stands there, in front of every host half: it picks the
records the host half may see (`Handler.host_records`), opens the secrets of a handler that
declares `needs_secrets` and seals them again with a key made for this task alone (sent with
the records, no_log), and seals what comes back with the store's key. Run in one process (a
module without the action plugin), the same gate hands the host half the same records, in clear.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from .backend_identity import owner_of, release_if_empty, save, settle
from .drivers.base import Driver
from .errors import BlockstoreError, StateStoreError
from .host_devices import LocalHost
from .objects import own_connections

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store
    from .sealing import Sealer

# Where a handler's work runs.
HOST, CONTROLLER = "host", "controller"
# Internal parameter the action plugin sets when it splits a task between the backend's host (its
# backend-side steps) and the task's host (docs/architecture.md): HOST_HALF plans only the steps on
# this host's devices, and refuses a backend-side one.
HALF_PARAM, HOST_HALF = "_blockstore_half", "host"
# Runs the host half with (records, new ids, the key to the secrets in those records: made for this task
# alone, None when they hold none); returns (result, changes), changes None when the outcome is unknown
# (the module process died).
Ship = Callable[[list, list, "str | None"], "tuple[dict, dict | None]"]
# What a handler's on_store runs its host half with: (records, new ids), the gate in front of a Ship.
Executor = Callable[[list, list], "tuple[dict, dict | None]"]
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
    # The key to the sealed secrets of `records`: on the host side, the one the controller made for this task.
    sealer: Sealer | None = None
    # The name of the host the host half runs on (as its connector says), asked only when a handler's
    # `host_records` needs it: the action plugin asks that host; run in one process, `host` answers.
    whoami: Callable[[], str] | None = None
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
    # The host half needs the records' secrets in clear (handed to drivers and connectors): they are sent
    # sealed with a key made for the task, sent too (`wants_key`); without it they are sent masked.
    needs_secrets: ClassVar[bool] = False
    # The host half makes secrets (connection credentials): it seals them with the task's key before they
    # leave it, and the controller seals them with the store's.
    makes_secrets: ClassVar[bool] = False
    # The host half works for one host (the task's `connector` names it, else it is the host the module runs
    # on): it is sent that host's connections whole, other hosts' only in part (objects.own_connections).
    own_connections_only: ClassVar[bool] = False
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
    def host_records(cls, records: list[dict], params: dict, whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
        """What the host half is sent of the selected `records` (store side, secrets still sealed), and the ids
        of those sent only in part, which it may not write back. All of them, unless `own_connections_only`."""
        if not cls.own_connections_only:
            return records, set()
        connector = params.get("connector") if isinstance(params.get("connector"), dict) else {}
        return own_connections(records, lambda: connector.get("host") or whoami())

    @classmethod
    def wants_key(cls, records: list[dict] | None) -> bool:
        """Whether the host half, sent these records, needs a key to sealed secrets."""
        if cls.makes_secrets:
            return True
        if not cls.needs_secrets or not records:
            return False
        from .sealing import holds_sealed
        return holds_sealed(records)

    @classmethod
    def on_store(cls, task: Task, store: Store, ship: Executor, answer_noop: NoopAnswer | None = None) -> dict:
        records = cls.select(store, task.backend, task.params)
        if answer_noop is not None and cls.noop_on_controller:
            return answer_noop(cls.on_host(dataclasses.replace(task, records=records))[0])
        return ship(records, [])[0]

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, dict | None]:
        raise NotImplementedError


class SecretGate:
    """On the store's side, between the selected records and a host half: what it is sent, and what it
    hands back, with secrets sealed by the store's key at rest and by a key of this task alone (`transit`)
    on the way; `transit` None: the host half runs in this process and is handed its secrets in clear."""

    def __init__(self, handler: type[Handler], task: Task, store_sealer: Sealer, transit: Sealer | None) -> None:
        self.handler, self.store_sealer, self.transit = handler, store_sealer, transit
        self.params, self.whoami = task.params, task.whoami or task.host.name
        self.partial: set[str] = set()

    def open(self, records: list[dict]) -> list[dict]:
        from .sealing import mask
        sent, self.partial = self.handler.host_records(records, self.params, self.whoami)
        if not self.handler.needs_secrets:  # sealed or not, none of its business
            return [mask(r) for r in sent]
        opened = [self.store_sealer.unseal_tree(r) for r in sent]
        return opened if self.transit is None else [self.transit.seal_tree(r) for r in opened]

    def close(self, changes: dict | None) -> dict | None:
        if not changes:
            return changes
        upserts = changes.get("upserts", [])
        written_back = sorted(self.partial & {r.get("id") for r in upserts})
        if written_back:  # a record sent without its secrets or details would overwrite the whole one
            raise StateStoreError(f"persistence: the module handed back records it was sent only in part "
                                  f"({', '.join(written_back)}); nothing of them was written")
        if self.transit is not None:
            upserts = [self.transit.unseal_tree(r) for r in upserts]
        return dict(changes, upserts=[self.store_sealer.seal_tree(r) for r in upserts])

    def guard(self, ship: Ship) -> Executor:
        """`ship` (or the host half in this process) behind the gate, as run_task's executor."""
        def gated(records: list, new_ids: list) -> tuple[dict, dict | None]:
            try:
                sent = self.open(records)
            except BlockstoreError as exc:  # nothing ran on the host: its pending records are put back
                exc.changes = {"upserts": [], "deletes": []}
                raise
            key = self.transit.key() if self.transit is not None and self.handler.wants_key(sent) else None
            try:
                result, changes = ship(sent, new_ids, key)
            except BlockstoreError as exc:
                exc.changes = self.close(getattr(exc, "changes", None))
                raise
            return result, self.close(changes)
        return gated


def _guarded(handler: type[Handler], task: Task, store: Store, ship: Ship, transit: bool) -> Executor:
    from .sealing import Sealer, new_key
    return SecretGate(handler, task, store.sealer, Sealer(key=new_key()) if transit else None).guard(ship)


def _on_host(handler: type[Handler], task: Task) -> tuple[dict, dict | None]:
    """The host half, with the records' secrets opened by the task's key, and what it hands back sealed by it."""
    sealer = task.sealer
    if sealer is None:
        return handler.on_host(task)

    def sealed(changes: dict | None) -> dict | None:
        if not changes:
            return changes
        return dict(changes, upserts=[sealer.seal_tree(r) for r in changes.get("upserts", [])])

    task = dataclasses.replace(task, records=[sealer.unseal_tree(r) for r in task.records or []])
    try:
        result, changes = handler.on_host(task)
    except BlockstoreError as exc:
        exc.changes = sealed(getattr(exc, "changes", None))
        raise
    return result, sealed(changes)


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
            return ship(None, [], None)[0], None
        with _identity_kept(store, task, unsaved) as watched:
            return handler.on_store(task, store, watched(_guarded(handler, task, store, ship, True)), answer_noop), None
    if store is not None and handler.needs_store:
        def here(records: list, new_ids: list, _key: str | None) -> tuple[dict, dict | None]:
            return handler.on_host(dataclasses.replace(task, records=records, new_ids=new_ids, sealer=None))
        with _identity_kept(store, task, unsaved) as watched:
            return handler.on_store(task, store, watched(_guarded(handler, task, store, here, False))), None
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
