# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backend's identity in the store: the options that locate its data, checked before any plan.

A backend name stands for one place of data. The store keeps one `backend` record per name:
its driver, the values of the driver's locating options (`Driver.locating_options`: the file
driver's path and format, rbd's pool and cluster...) and their fingerprint. A task whose
options locate other data is refused, naming each option with its recorded and given value,
before anything is planned or written; reusing a name for another directory would otherwise
answer `ok` from the records and fail later on files that are not there.

The record is written with the first object records of a task that may change the backend (not
in check mode, not by a read-only task, not by a refused one). A store from before fingerprints
has records but no backend record: the first such task adopts its options (`adopted: true`).
A backend with no object records left may be pointed elsewhere: its record then takes the new
options.

The record's id also names this store on the backend (`owner_of`): drivers that keep an owner
marker (the file driver's `.blockstore-owner`) write it at first use, so that another store's
drift check can tell whose objects are there.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from .drivers.base import Driver
from .errors import Conflict
from .objects import BACKEND, CONNECTION, SNAPSHOT, VOLUME, new_id, now
from .sealing import MASK

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

# What a user gets told to do about a refused task.
ADVICE = ("a backend name stands for one place of data: give the recorded options, or another backend name for "
          "the other data (docs/troubleshooting.md); nothing was changed")


def fingerprint(driver_name: str, locator: dict) -> str:
    """A digest of the driver and its locating options' values: equal when they locate the same data."""
    text = json.dumps({"driver": driver_name, "locator": locator}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def lock_key(backend: str) -> str:
    return f"{backend}:{BACKEND}"


def _has_objects(store: Store, backend: str) -> bool:
    return any(store.find(backend, kind) for kind in (VOLUME, SNAPSHOT, CONNECTION))


def _shown(driver: Driver, option: str, value: object) -> str:
    secret = option in driver.secret_option_names({option: value})
    return MASK if secret else repr(value)


def _refusal(store: Store, driver: Driver, record: dict, given: dict) -> Conflict:
    recorded = {"driver": record.get("driver"), **(record.get("locator") or {})}
    wanted = {"driver": driver.name, **given}
    differ = [k for k in sorted(set(recorded) | set(wanted), key=lambda k: (k != "driver", k))
              if recorded.get(k) != wanted.get(k)]
    options = ", ".join(f"backend.{k}" for k in differ)

    def values(source: dict) -> str:
        return ", ".join(f"{k} {_shown(driver, k, source.get(k))}" for k in differ)

    return Conflict(f"{options}: backend {driver.backend_name!r} is recorded in the store ({store.identity}) with "
                    f"{values(recorded)}; this task gives {values(wanted)}: {ADVICE}", f"backend.{differ[0]}")


def settle(store: Store, driver: Driver, claim: bool) -> tuple[dict | None, dict | None]:
    """(the backend record this task runs under, the record to write once the task wrote object records).

    Refuses a task whose locating options differ from the record while the backend has object records.
    `claim`: a task that may change the backend runs under a new record when there is none (first use,
    or a store from before fingerprints), or under the new options when no object record is left; it is
    written only with the task's first object records (`save`), so a refused task leaves the store as it was.
    """
    given = driver.locator()
    mark = fingerprint(driver.name, given)
    backend = driver.backend_name
    found = store.find(backend, BACKEND)
    if found and found[0].get("fingerprint") == mark:
        return found[0], None
    has_objects = _has_objects(store, backend)
    if found and has_objects:
        raise _refusal(store, driver, found[0], given)
    if not claim:
        return None, None
    record = dict(found[0]) if found else {
        "kind": BACKEND, "id": new_id(), "backend": backend, "name": backend, "created_at": now(),
        # Records without a fingerprint: a store from before them; their options are adopted.
        "adopted": has_objects}
    record.update(driver=driver.name, locator=given, fingerprint=mark, updated_at=now())
    return record, record


def save(store: Store, record: dict) -> None:
    """Write the record settle() made for a task, unless another task of the backend wrote one meanwhile."""
    with store.locked([lock_key(record["backend"])]):
        found = store.find(record["backend"], BACKEND)
        if not found or (found[0]["id"] == record["id"] and found[0].get("fingerprint") != record["fingerprint"]):
            store.apply(upserts=[record])


def release_if_empty(store: Store, backend: str) -> None:
    """After a task that deleted records: the backend record goes when no object record is left."""
    if _has_objects(store, backend):
        return
    with store.locked([lock_key(backend)]):
        if not _has_objects(store, backend):
            store.apply(deletes=store.find(backend, BACKEND))


def store_label(store: Store) -> str:
    """How an owner marker names a store: a fingerprint of its identity, never its path or URL (the
    owner goes with the module's arguments to every host a task runs on, consumers included)."""
    return "store " + hashlib.sha256(str(store.identity).encode("utf-8")).hexdigest()[:16]


def owner_of(store: Store, record: dict | None) -> dict | None:
    """What a driver writes in (and compares with) its owner marker: this store, under this backend record."""
    if record is None:
        return None
    return {"id": record["id"], "store": store_label(store), "backend": record["backend"],
            "adopted": bool(record.get("adopted"))}
