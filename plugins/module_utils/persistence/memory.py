# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-process store, as cinderlib's memory persistence: nothing outlives the process.

Useful from plain Python and tests. Under Ansible each task is its own process,
so a memory store starts empty in every task.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from typing import Iterable, Iterator

from .. import serialization
from .base import Store, matches, refuse_id_clash


class MemoryStore(Store):
    def __init__(self) -> None:
        self._records: dict[str, dict] = {}
        self._lock = threading.RLock()

    @property
    def identity(self) -> str:
        return "memory"

    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records.values() if matches(r, backend, kind, filters)]

    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        # Checked and copied as JSON before the first change (refused as the file and db stores refuse
        # them): a bad record changes nothing.
        copies = [json.loads(json.dumps(serialization.check_record(r, "apply: record"))) for r in upserts]
        with self._lock:
            for record in copies:
                refuse_id_clash(self._records.get(record["id"]), record)
            for record in copies:
                self._records[record["id"]] = record
            for gone in deletes:
                self._records.pop(gone["id"], None)

    def all_records(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._records.values()))

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        with self._lock:
            yield
