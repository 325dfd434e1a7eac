# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver registry: `backend.driver` names a class here, imported only when used."""

from __future__ import annotations

import json
from typing import Callable

from ..errors import InvalidParameter
from ..objects import has_control_characters
from ..volume_types import TYPES_KEY, check_types
from .base import Driver


# Imports are plain statements inside functions: lazy (a task loads only its own
# driver) yet visible to AnsiballZ, which ships only module_utils it can see.
def _file() -> type[Driver]:
    from .file import FileDriver
    return FileDriver


def _rbd() -> type[Driver]:
    from .rbd import RbdDriver
    return RbdDriver


def _lvm() -> type[Driver]:
    from .lvm import LvmDriver
    return LvmDriver


def _cinder() -> type[Driver]:
    from .cinder import CinderDriver
    return CinderDriver


# name -> loader; a new driver is one line here plus its module.
DRIVERS: dict[str, Callable[[], type[Driver]]] = {
    "file": _file,
    "rbd": _rbd,
    "lvm": _lvm,
    "cinder": _cinder,
}


def driver_class(name: object) -> type[Driver]:
    if not isinstance(name, str) or name not in DRIVERS:
        raise InvalidParameter(f"backend.driver: {name!r} is not a known driver; "
                               f"known: {', '.join(sorted(DRIVERS))}", "backend.driver")
    return DRIVERS[name]()


# The backend key naming the inventory host where its backend-side work runs (docs/architecture.md):
# not a driver option, so it never takes part in the backend's identity.
HOST_KEY = "host"


def build_driver(backend: object) -> Driver:
    """A driver bound to one backend, from the task's `backend` dict."""
    if isinstance(backend, str) and backend.lstrip().startswith("{"):
        # Ad-hoc commands pass k=v arguments: backend='{"name": ...}' arrives as text.
        try:
            backend = json.loads(backend)
        except ValueError as exc:
            raise InvalidParameter(f"backend: not valid JSON ({exc})", "backend") from None
    if not isinstance(backend, dict):
        # Ansible tags values with subclasses of str, list...: name the type a user wrote.
        given = next((t.__name__ for t in (bool, int, float, str, list) if isinstance(backend, t)),
                     type(backend).__name__)
        raise InvalidParameter(f"backend: must be a dict with name, driver and the driver's options, "
                               f"got {given} {backend!r}", "backend")
    options = dict(backend)
    name = options.pop("name", None)
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("backend.name: required, a non-empty string naming the backend", "backend.name")
    if has_control_characters(name):
        # Every record carries it and messages show it: a newline would forge lines in logs.
        raise InvalidParameter(f"backend.name: {name!r} contains control characters", "backend.name")
    driver = options.pop("driver", None)
    if driver is None:
        raise InvalidParameter(f"backend.driver: required; known: {', '.join(sorted(DRIVERS))}", "backend.driver")
    host = options.pop(HOST_KEY, None)
    if host is not None and (not isinstance(host, str) or not host.strip() or has_control_characters(host)):
        raise InvalidParameter(f"backend.{HOST_KEY}: must be the name of an inventory host (where the backend-side "
                               f"work runs), got {host!r}", f"backend.{HOST_KEY}")
    types = check_types(options.pop(TYPES_KEY, None))
    built = driver_class(driver).from_options(name, options)
    built.backend_host = host
    built.volume_types = types
    return built
