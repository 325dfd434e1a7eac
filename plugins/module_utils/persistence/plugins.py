# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin state stores: found by Python entry point or collection FQCN, checked against the contract.

`persistence.storage` names a store that is not built in either as
- an entry point of the group `blockstore.storage.stores` (a package pip-installed
  into the controller's Python), whose object is the store class; or
- a collection FQCN `ns.coll.name`: the module `ansible_collections.ns.coll.plugins.plugin_utils.name`
  and its `STORE` attribute (the class). On the controller Ansible's collection loader makes
  every installed collection importable, so plain importlib is enough here.
The store's own options (every `persistence` key but `storage`) are validated with the
class's `options` spec; nothing is opened, so nothing is written, until the store passes.
Whatever a plugin raises that is not a BlockstoreError becomes a StateStoreError naming it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from typing import Any, Iterable, Iterator, Mapping

from ..errors import BlockstoreError, InvalidParameter, StateStoreError
from .base import BUILTIN_STORAGES, CONTRACT_VERSION, Store

ENTRY_POINT_GROUP = "blockstore.storage.stores"
COLLECTION_MODULE = "ansible_collections.{namespace}.{collection}.plugins.plugin_utils.{name}"
OPTION_TYPES = ("str", "int", "float", "bool", "path", "list", "dict", "raw")
_FQCN = re.compile(r"^([a-z0-9_]+)\.([a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_]*)$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _entry_points() -> list[Any]:
    """The group's entry points; importlib.metadata's API changed in Python 3.10."""
    from importlib import metadata

    found = metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, ()))  # Python 3.9: a dict of groups


def entry_point_names() -> list[str]:
    return sorted({ep.name for ep in _entry_points()})


def _load_entry_point(name: str) -> tuple[Any, str] | None:
    for ep in _entry_points():
        if ep.name == name:
            where = f"entry point {name} = {ep.value} (group {ENTRY_POINT_GROUP})"
            try:
                return ep.load(), where
            except Exception as exc:  # any import failure of someone else's package
                raise StateStoreError(f"persistence.storage: store {name!r} ({where}) failed to import: "
                                      f"{type(exc).__name__}: {exc}", "persistence.storage") from None
    return None


def _load_collection_store(name: str) -> tuple[Any, str]:
    namespace, collection, module_name = _FQCN.match(name).groups()
    path = COLLECTION_MODULE.format(namespace=namespace, collection=collection, name=module_name)
    where = f"collection {namespace}.{collection}, module {path}"
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name and path.startswith(exc.name):
            raise StateStoreError(
                f"persistence.storage: no store {name!r}: {path} is not found; is the collection "
                f"{namespace}.{collection} installed, with plugins/plugin_utils/{module_name}.py?",
                "persistence.storage") from None
        raise StateStoreError(f"persistence.storage: store {name!r} ({where}) failed to import: "
                              f"{type(exc).__name__}: {exc}", "persistence.storage") from None
    except Exception as exc:
        raise StateStoreError(f"persistence.storage: store {name!r} ({where}) failed to import: "
                              f"{type(exc).__name__}: {exc}", "persistence.storage") from None
    if not hasattr(module, "STORE"):
        raise StateStoreError(f"persistence.storage: store {name!r} ({where}) has no STORE attribute "
                              "(the store class)", "persistence.storage")
    return module.STORE, where


def check_store_class(cls: Any, name: str, where: str) -> type[Store]:
    """The class, if it meets this collection's store contract; else an error naming what is expected."""
    prefix = f"persistence.storage: store {name!r} ({where})"
    if not isinstance(cls, type) or not issubclass(cls, Store):
        raise StateStoreError(f"{prefix} is not a store class: expected a subclass of "
                              "blockstore.storage's persistence.base.Store (docs/stores.md)", "persistence.storage")
    version = getattr(cls, "contract_version", None)
    if version != CONTRACT_VERSION:
        raise StateStoreError(f"{prefix} implements store contract version {version!r}; this blockstore.storage "
                              f"speaks version {CONTRACT_VERSION} (docs/stores.md)", "persistence.storage")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise StateStoreError(f"{prefix} does not implement {', '.join(missing)} of the store contract "
                              "(docs/stores.md)", "persistence.storage")
    spec = getattr(cls, "options", None)
    if not isinstance(spec, dict) or not all(isinstance(o, dict) for o in spec.values()):
        raise StateStoreError(f"{prefix}: its `options` must be a dict of option name -> spec dict",
                              "persistence.storage")
    for option, option_spec in spec.items():
        if option == "storage" or option_spec.get("type", "str") not in OPTION_TYPES:
            raise StateStoreError(f"{prefix}: option {option!r} is not valid in its `options` "
                                  f"(the name storage is taken; types: {', '.join(OPTION_TYPES)})",
                                  "persistence.storage")
    return cls


def find_store_class(storage: Any) -> tuple[type[Store], str]:
    """(store class, where it came from) for a plugin store's name, or a class given in Python."""
    if isinstance(storage, type):
        name = getattr(storage, "__name__", str(storage))
        return check_store_class(storage, name, f"class {storage.__module__}.{name}"), f"class {name}"
    if not isinstance(storage, str) or not storage:
        raise InvalidParameter(f"persistence.storage: must be a store name, got {storage!r}", "persistence.storage")
    if _FQCN.match(storage):
        cls, where = _load_collection_store(storage)
    else:
        loaded = _load_entry_point(storage)
        if loaded is None:
            installed = ", ".join(entry_point_names()) or "none"
            raise InvalidParameter(
                f"persistence.storage: no store named {storage!r}: not a built-in store "
                f"({', '.join(BUILTIN_STORAGES)}), not an entry point of group {ENTRY_POINT_GROUP} "
                f"(installed: {installed}), and not a collection FQCN (namespace.collection.name)",
                "persistence.storage")
        cls, where = loaded
    return check_store_class(cls, storage, where), where


def _convert(value: Any, kind: str, option: str, secret: bool) -> Any:
    shown = "the value is not shown" if secret else f"got {value!r}"
    error = InvalidParameter(f"persistence.{option}: must be of type {kind} ({shown})", f"persistence.{option}")
    if kind == "raw":
        return value
    if kind in ("str", "path"):
        if isinstance(value, (dict, list, bool)):
            raise error
        text = str(value)
        return os.path.abspath(os.path.expanduser(text)) if kind == "path" else text
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE:
            return True
        if str(value).lower() in _FALSE:
            return False
        raise error
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise error
        try:
            number = float(value) if kind == "float" else int(str(value), 10)
        except (TypeError, ValueError):
            raise error from None
        return number
    if kind == "list":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise error
        return value
    if not isinstance(value, dict):  # dict
        raise error
    return value


def validate_options(cls: type[Store], name: str, given: Mapping[str, Any],
                     environ: Mapping[str, str]) -> tuple[dict, set[str]]:
    """(options for the class's constructor, the values of its secret options) from `persistence`."""
    spec = cls.options
    unknown = sorted(set(given) - set(spec))
    if unknown:
        allowed = ", ".join(["storage", *sorted(spec)])
        raise InvalidParameter(f"persistence: unknown option(s) {', '.join(unknown)} for store {name!r}; "
                               f"allowed: {allowed}", "persistence")
    values, secrets = {}, set()
    for option, option_spec in spec.items():
        value = given.get(option)
        env_names = option_spec.get("env") or []
        if value is None:
            value = next((environ[e] for e in env_names if environ.get(e)), None)
        if value is None:
            value = option_spec.get("default")
        if value is None:
            if option_spec.get("required"):
                also = f" (or set {' or '.join(env_names)})" if env_names else ""
                raise InvalidParameter(f"persistence.{option}: required by store {name!r}{also}",
                                       f"persistence.{option}")
            continue
        secret = bool(option_spec.get("no_log"))
        value = _convert(value, option_spec.get("type", "str"), option, secret)
        choices = option_spec.get("choices")
        if choices and value not in choices:
            raise InvalidParameter(f"persistence.{option}: {value!r} is not one of "
                                   f"{', '.join(map(str, choices))} (store {name!r})", f"persistence.{option}")
        if secret and value not in ("", None):
            secrets.add(str(value))
        values[option] = value
    return values, secrets


def secret_values(storage: Any, given: Mapping[str, Any], environ: Mapping[str, str]) -> set[str]:
    """Values to mask for a plugin store's options: those of its `no_log` options, given or from the
    environment. A store that cannot be loaded has none: it never saw the options, and the errors
    about it show none."""
    try:
        cls, _where = find_store_class(storage)
    except BlockstoreError:
        return set()
    found = set()
    for option, option_spec in cls.options.items():
        if not option_spec.get("no_log"):
            continue
        value = given.get(option)
        if value is None:
            value = next((environ[e] for e in option_spec.get("env") or [] if environ.get(e)), None)
        if value not in (None, ""):
            found.add(str(value))
    return found


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


class GuardedStore(Store):
    """A plugin store behind the core's guard: its failures become StateStoreErrors naming it.

    The guard keeps the sealer (the core seals before apply), so the plugin never sees a key.
    """

    def __init__(self, inner: Store, name: str, secrets: set[str]) -> None:
        self.inner = inner
        self.name = name
        self._secrets = secrets

    @property
    def identity(self) -> str:
        return self._identity_of(self.inner, self.name, self._secrets)

    @staticmethod
    def _identity_of(inner: Store, name: str, secrets: set[str]) -> str:
        try:
            shown = str(inner.identity)
        except Exception:  # an identity that fails must not hide the real error
            shown = type(inner).__name__
        return _scrub(f"{name} ({shown})" if shown != name else name, secrets)

    def _error(self, what: str, exc: BaseException) -> StateStoreError:
        return StateStoreError(_scrub(f"persistence: store {self.identity}: {what} failed: "
                                      f"{type(exc).__name__}: {exc}", self._secrets), "persistence")

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BlockstoreError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from None

    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        return self._call("find", self.inner.find, backend, kind, **filters)

    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        self._call("apply", self.inner.apply, list(upserts), list(deletes))

    def all_records(self) -> list[dict]:
        return self._call("all_records", self.inner.all_records)

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            self._call("locked", lambda: stack.enter_context(self.inner.locked(list(keys))))
            yield

    def close(self) -> None:
        self._call("close", self.inner.close)


def open_plugin_store(storage: Any, given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Store:
    """Find, check and open a plugin store with its validated options."""
    environ = os.environ if environ is None else environ
    cls, where = find_store_class(storage)
    name = storage if isinstance(storage, str) else where
    values, secrets = validate_options(cls, name, given, environ)
    try:
        inner = cls(**values)
    except BlockstoreError:
        raise
    except Exception as exc:
        raise StateStoreError(_scrub(f"persistence: store {name!r} ({where}) failed to open: "
                                     f"{type(exc).__name__}: {exc}", secrets), "persistence") from None
    return GuardedStore(inner, name, secrets)
