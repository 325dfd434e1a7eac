# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pick and open a state store from the `persistence` option: a built-in one or a plugin (plugins.py).

Only the chosen store's module is imported: SQLAlchemy costs about 200 ms and
most tasks never need it.
"""

from __future__ import annotations

import os
import re

from ..errors import InvalidParameter
from ..sealing import Sealer
from .base import BUILTIN_STORAGES, Store

STORAGES = BUILTIN_STORAGES  # the built-in ones; any other name is a plugin store (plugins.py)
BUILTIN_OPTIONS = ("storage", "path", "connection")
DEFAULT_STATE_PATH = "~/.ansible/blockstore/state.json"
ENV_PATH = "BLOCKSTORE_STATE_PATH"
ENV_URL = "BLOCKSTORE_STATE_URL"


def is_plugin(persistence: object) -> bool:
    """Whether `persistence` names a plugin store (its other keys are then the plugin's options)."""
    storage = persistence.get("storage") if isinstance(persistence, dict) else None
    return bool(storage) and storage not in BUILTIN_STORAGES


def split_plugin_options(persistence: object) -> tuple[object, dict]:
    """(`persistence` as the built-in argument spec sees it, the plugin store's own options).

    Ansible validates the built-in keys; a plugin store's keys are validated by its own spec. A key
    set to None is not given (Ansible fills the built-in suboptions that way).
    """
    if not is_plugin(persistence):
        return persistence, {}
    options = {k: v for k, v in persistence.items() if k != "storage" and v is not None}
    return {"storage": persistence["storage"]}, options


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
            re.match(r"sqlite(\+\w+)?://(/(:memory:|file::memory:.*)?)?(\?.*)?\Z", url) or
            re.search(r"[?&]mode=memory(&|\Z)", url)):
        raise InvalidParameter("persistence.connection: an in-memory SQLite database keeps nothing after the task; "
                               "give a file (sqlite:///path/to/state.db)", "persistence.connection")


def normalize(persistence: dict | None) -> dict:
    """Fill defaults and env fallbacks; reject unknown keys and bad values.

    A plugin store's options are left to its own spec (plugins.validate_options).
    """
    options = dict(persistence or {})
    if is_plugin(options):
        return options
    allowed = BUILTIN_OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidParameter(f"persistence: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}",
                               "persistence")
    refuse_ignored(options)
    storage = options.get("storage") or ("db" if options.get("connection") or (
        not options.get("path") and os.environ.get(ENV_URL) and not os.environ.get(ENV_PATH)) else "file")
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


def open_store(persistence: dict | None, environ: dict | None = None) -> Store:
    """The store `persistence` names; `storage` may also be a store class (from plain Python)."""
    options = normalize(persistence)
    if is_plugin(options):
        from .plugins import open_plugin_store
        # None is "not given": Ansible's validation fills the built-in suboptions (path, connection) with it.
        given = {k: v for k, v in options.items() if k != "storage" and v is not None}
        store = open_plugin_store(options["storage"], given, os.environ if environ is None else environ)
    elif options["storage"] == "file":
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
