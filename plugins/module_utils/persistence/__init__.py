# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pick and open a state store from the `persistence` option.

Only the chosen store's module is imported: SQLAlchemy costs about 200 ms and
most tasks never need it.
"""

from __future__ import annotations

import os
import re

from ..errors import InvalidParameter
from ..sealing import Sealer
from .base import Store

STORAGES = ("file", "db", "memory")
DEFAULT_STATE_PATH = "~/.ansible/blockstore/state.json"
ENV_PATH = "BLOCKSTORE_STATE_PATH"
ENV_URL = "BLOCKSTORE_STATE_URL"


def refuse_ignored(options: dict) -> None:
    """An option given but not used would silently send the state somewhere else: refused."""
    path, url, storage = options.get("path"), options.get("connection"), options.get("storage")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise InvalidParameter(f"persistence.path: {path!r} is not a file path; leave the option out for the "
                               "default store", "persistence.path")
    if storage == "file" and url:
        raise InvalidParameter("persistence.connection: storage 'file' uses persistence.path, not a connection "
                               "URL; drop one of them", "persistence.connection")
    if storage in ("db", "memory") and path:
        raise InvalidParameter(f"persistence.path: storage {storage!r} does not use a path; drop it",
                               "persistence.path")
    # SQLite in memory (no database path, ':memory:', mode=memory) forgets everything at the end of the task:
    # every run would create its volumes again.
    if isinstance(url, str) and url.startswith("sqlite") and (
            re.match(r"sqlite(\+\w+)?://(/(:memory:|file::memory:.*)?)?(\?.*)?\Z", url)
            or re.search(r"[?&]mode=memory(&|\Z)", url)):
        raise InvalidParameter("persistence.connection: an in-memory SQLite database keeps nothing after the task; "
                               "give a file (sqlite:///path/to/state.db)", "persistence.connection")


def normalize(persistence: dict | None) -> dict:
    """Fill defaults and env fallbacks; reject unknown keys and bad values."""
    options = dict(persistence or {})
    allowed = ("storage", "path", "connection")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidParameter(f"persistence: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}",
                               "persistence")
    refuse_ignored(options)
    storage = options.get("storage") or ("db" if options.get("connection") or (
        not options.get("path") and os.environ.get(ENV_URL) and not os.environ.get(ENV_PATH)) else "file")
    if storage not in STORAGES:
        raise InvalidParameter(f"persistence.storage: {storage!r} is not one of {', '.join(STORAGES)}",
                               "persistence.storage")
    options["storage"] = storage
    if storage == "file":
        path = options.get("path") or os.environ.get(ENV_PATH) or DEFAULT_STATE_PATH
        if not isinstance(path, str) or not path.strip():
            raise InvalidParameter("persistence.path: must be a file path", "persistence.path")
        options["path"] = os.path.abspath(os.path.expanduser(path))
    elif storage == "db":
        url = options.get("connection") or os.environ.get(ENV_URL)
        if not isinstance(url, str) or "://" not in url:
            raise InvalidParameter(
                "persistence.connection: a SQLAlchemy URL is required for storage 'db' "
                "(sqlite:///path or postgresql+psycopg://user:password@host/db), "
                f"or set {ENV_URL}", "persistence.connection")
        options["connection"] = url
    return options


def open_store(persistence: dict | None) -> Store:
    options = normalize(persistence)
    if options["storage"] == "file":
        from .jsonfile import JsonFileStore
        store = JsonFileStore(options["path"])
    elif options["storage"] == "db":
        from .db import DbStore
        store = DbStore(options["connection"])
    else:
        from .memory import MemoryStore
        store = MemoryStore()
    # Secret fields are sealed with this store's key before they are written (sealing.py).
    store.sealer = Sealer.for_persistence(options)
    return store
