# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store contract every state store implements (docs/stores.md), and the inter-process locks they share.

A store holds records (JSON-able dicts with kind, id, backend). Two guarantees:
- `apply` is atomic and merges: it changes only the records it names, so
  concurrent writers of different records never lose each other's updates;
- `locked(keys)` serializes tasks on the same resources across processes
  (Ansible forks are processes) and lets tasks on other resources run.
The built-in stores and the plugin stores (persistence/plugins.py) implement the same
contract, of version CONTRACT_VERSION; sealing stays in the core, so a store only ever
holds sealed secrets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from abc import ABC, abstractmethod
from typing import ClassVar, Iterable, Iterator

from ..errors import Conflict, StateStoreError
from ..sealing import Sealer, new_key

# The version of the store contract (docs/stores.md) this collection speaks. A store declares the
# version it implements; one of another version is refused before anything is written.
CONTRACT_VERSION = 1
# The stores this collection ships; any other `persistence.storage` names a plugin store (plugins.py).
BUILTIN_STORAGES = ("file", "db", "memory")

# Filters a store must support in find(); each matches one record field exactly.
FILTER_FIELDS = ("id", "name", "volume_id", "status")

# Resource locks are striped over this many lock files: two keys in one stripe
# only wait for each other, they never lose updates. Bounded file count whatever
# the number of volumes.
LOCK_STRIPES = 1024


class Store(ABC):
    """A controller-side state store: the contract of docs/stores.md."""

    # The contract version this store implements; a plugin store of another one is refused.
    contract_version: ClassVar[int] = CONTRACT_VERSION
    # A plugin store's own options, given beside `storage` in `persistence`: name -> {type, required,
    # default, choices, no_log, env, description} (persistence/plugins.py validates them).
    options: ClassVar[dict[str, dict]] = {}
    _sealer: Sealer | None = None

    @property
    def identity(self) -> str:
        """Which store this is, for error messages and fingerprints: never a password."""
        return type(self).__name__

    @property
    def sealer(self) -> Sealer:
        """Seals secret fields before they are written (sealing.py). open_store() gives it the
        persistent key of its `persistence`; a store made otherwise gets a key for this process only."""
        if self._sealer is None:
            self._sealer = Sealer(key=new_key())
        return self._sealer

    @sealer.setter
    def sealer(self, sealer: Sealer) -> None:
        self._sealer = sealer

    @abstractmethod
    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        """Records of `backend` (and `kind`) whose fields equal the non-None filters."""

    @abstractmethod
    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        """Atomically insert/replace `upserts` and remove `deletes` ({'kind', 'id'})."""

    @abstractmethod
    def all_records(self) -> list[dict]:
        """Every record of every backend (export, drift checks, tests)."""

    def by_id(self, object_id: str) -> dict | None:
        """The record with this id, whatever its backend and kind: ids are unique in a store.
        Stores that can look it up directly override this scan."""
        return next((r for r in self.all_records() if r["id"] == object_id), None)

    @abstractmethod
    def locked(self, keys: Iterable[str]) -> contextlib.AbstractContextManager:
        """Hold exclusive inter-process locks on `keys` for the duration of the block."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections; the default store holds none."""


def stripe_of(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % LOCK_STRIPES


class FileLocks:
    """Striped exclusive locks as flock()ed files in one directory.

    Lock files are never renamed or removed: an flock on a file that is later
    replaced by rename does not exclude anyone (measured: 86% lost updates).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _open(self, name: str) -> int:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            return os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateStoreError(f"persistence: cannot create lock file in {self.directory}: "
                                  f"{exc.strerror}") from None

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        fd = self._open(name)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    break
                except OSError as exc:  # pragma: no cover - signals only
                    if exc.errno != errno.EINTR:
                        raise
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        # Sorted, de-duplicated stripes: every process takes them in one order,
        # so two tasks can never deadlock on each other.
        stripes = sorted({stripe_of(k) for k in keys})
        with contextlib.ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self.hold(f"resource-{stripe:04d}.lock"))
            yield


def refuse_id_clash(held: dict | None, record: dict) -> None:
    """An upsert may replace only its own object: same id, same kind, same backend. Anything else would
    make another object's record disappear (its image then unknown to the drift check)."""
    if held is not None and (held.get("kind"), held.get("backend")) != (record["kind"], record["backend"]):
        raise Conflict(f"id: {record['id']} already belongs to {held.get('kind')} {held.get('name') or held['id']!r} "
                       f"of backend {held.get('backend')!r}; ids are unique across the whole state store and across "
                       "kinds: give another id, or none; nothing was changed", "id")


def matches(record: dict, backend: str, kind: str | None, filters: dict) -> bool:
    """The one definition of find()'s filter semantics, for stores that filter in Python."""
    if record.get("backend") != backend or (kind is not None and record.get("kind") != kind):
        return False
    return all(value is None or record.get(field) == value for field, value in filters.items())
