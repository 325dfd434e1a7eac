# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backends from a cinder.conf-style file, parsed with oslo.config.

    [DEFAULT]
    enabled_backends = ceph, lab

    [ceph]
    volume_driver = cinder.volume.drivers.rbd.RBDDriver
    rbd_pool = volumes
    rbd_ceph_conf = /etc/ceph/ceph.conf

    [lab]
    driver = file
    path = /var/lib/blockstore/lab

A task's `backend` then names a section (`backend: ceph`), or is a dict naming one
(`{section: ceph, ...}`, or `{name: ceph, ...}` without `driver`) whose other keys
override the section's options. The result is the same `backend` dict a task could
have given inline: `{name, driver, <options>}`.

A section's driver: `driver = <ours>`, else its `volume_driver` (Cinder's class path):
Cinder's RBDDriver is our native `rbd`; any other Cinder class runs through the `cinder`
adapter. The driver's own `Opt` declarations become oslo.config options (config.to_oslo_opt)
to read the section, so one declaration checks task parameters and file sections alike.
oslo.config ignores keys nobody registered, so unknown keys are found here, from the raw
sections of oslo's own parser. For the `cinder` adapter only its own options are known on
the controller; the Cinder driver's options go on as text and are checked where the module
runs, against the options that driver registers.

oslo.config (about 90 ms to import) is imported only when a file is read; a private
ConfigOpts is used, never the process-wide cfg.CONF.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .config import describe_type, to_oslo_opt
from .errors import InvalidParameter, MissingDependency
from .volume_types import TYPES_KEY

ENV_BACKENDS_FILE = "BLOCKSTORE_BACKENDS_FILE"
OPTION = "backends_file"
CINDER_RBD_DRIVER = "cinder.volume.drivers.rbd.RBDDriver"
# Cinder class paths that a native driver of ours replaces.
NATIVE_CINDER_DRIVERS = {CINDER_RBD_DRIVER: "rbd"}
# Keys every section may carry whatever its driver: they choose the driver or name
# the backend for Cinder, and are not options of a native driver.
SECTION_KEYS = ("driver", "volume_driver", "volume_backend_name")
SECTION_KEY = "section"
# oslo.config (like Cinder reading cinder.conf) keeps `value ; note` whole, so an inline comment
# would silently become part of the value: refused. A `;` or `#` not after a blank (a#b) is data.
INLINE_COMMENT = re.compile(r"\s[;#]")
# `backend` is not required in the argument spec: linters check each task against the spec and
# cannot see module_defaults fill it in, so its absence is refused here, where the task runs.
MISSING_BACKEND = ("backend: missing; give it in the task, or once for a play or block with module_defaults: "
                   "group/blockstore.storage.storage: {backend: ...} (a dict with name, driver and the driver's "
                   "options, or a section of the backends file)")


def refers_to_file(backend: object) -> bool:
    """Whether `backend` names a section of a backends file rather than being complete."""
    if isinstance(backend, str):
        return not backend.lstrip().startswith("{")
    if isinstance(backend, dict):
        return SECTION_KEY in backend or "driver" not in backend
    return False


def resolve_backend(backend: object, backends_file: str | None) -> object:
    """The complete `backend` dict for a task; inline backends come back as they are.

    A string is a section name; a dict with `section` names its section and overrides
    some options; a dict with `name` but no `driver` names a section when a backends
    file is given.
    """
    if backend is None:
        raise InvalidParameter(MISSING_BACKEND, "backend")
    if isinstance(backend, str) and backend.lstrip().startswith("{"):
        # Ad-hoc commands pass k=v arguments: backend='{"name": ...}' arrives as text.
        try:
            backend = json.loads(backend)
        except ValueError as exc:
            raise InvalidParameter(f"backend: not valid JSON ({exc})", "backend") from None
    if isinstance(backend, dict) and SECTION_KEY not in backend and (
            "driver" in backend or not backends_file):
        return backend
    if isinstance(backend, str):
        section, overrides = backend.strip(), {}
    elif isinstance(backend, dict):
        overrides = dict(backend)
        section = overrides.pop(SECTION_KEY, None)
        if section is None:
            section = overrides.pop("name", None)
        if not isinstance(section, str) or not section.strip():
            raise InvalidParameter(f"backend.{SECTION_KEY}: must name a section of the backends file, "
                                   f"got {section!r}", f"backend.{SECTION_KEY}")
        section = section.strip()
    else:
        return backend  # build_driver reports the wrong type
    if not backends_file:
        raise InvalidParameter(
            f"backend: {section!r} names a section of a backends file, but no backends file is given; set "
            f"{OPTION} (or the environment variable {ENV_BACKENDS_FILE}), or give backend as a dict with "
            "name, driver and the driver's options", OPTION)
    return backend_from_file(backends_file, section, overrides)


def _oslo_cfg() -> Any:
    try:
        from oslo_config import cfg
    except ImportError:
        raise MissingDependency(f"{OPTION}: reading a backends file needs the Python library oslo.config "
                                "(pip install oslo.config) where the file is read", "oslo.config",
                                OPTION) from None
    return cfg


def read_sections(path: str) -> dict[str, dict[str, str]]:
    """{section: {key: raw text}} of a backends file, with oslo.config's own INI parser."""
    where = f"{OPTION}: {path}"
    if not os.path.isabs(path):
        raise InvalidParameter(f"{where} must be an absolute path", OPTION)
    if not os.path.isfile(path):
        raise InvalidParameter(f"{where} does not exist (or is not a file)", OPTION)
    if not os.access(path, os.R_OK):
        raise InvalidParameter(f"{where} cannot be read", OPTION)
    cfg = _oslo_cfg()
    sections: dict[str, dict[str, list[str]]] = {}
    try:
        cfg.ConfigParser(path, sections).parse()
    except cfg.ParseError as exc:
        raise InvalidParameter(f"{where} is not a valid INI file: {exc}", OPTION) from None
    except UnicodeDecodeError as exc:
        raise InvalidParameter(f"{where} is not UTF-8 text: {exc}", OPTION) from None
    # A key given twice: the last one counts, as in oslo.config.
    return {name: {key: values[-1] for key, values in keys.items()} for name, keys in sections.items()}


def enabled_backends(path: str, sections: dict[str, dict[str, str]]) -> list[str]:
    raw = sections.get("DEFAULT", {}).get("enabled_backends")
    if raw is None:
        raise InvalidParameter(f"{OPTION}: {path} has no enabled_backends in [DEFAULT]; list the backend "
                               "sections there, as in cinder.conf (enabled_backends = ceph, lab)", OPTION)
    return [name.strip() for name in raw.split(",") if name.strip()]


def refuse_inline_comments(path: str, section: str, keys: dict[str, str]) -> None:
    """Refuse `key = value ; comment`: oslo.config and Cinder would read the comment as part of the value."""
    for key, value in keys.items():
        found = INLINE_COMMENT.search(value)
        if found:
            raise InvalidParameter(
                f"{OPTION}: {path} [{section}] {key} = {value!r} holds an inline comment "
                f"({value[found.start():].strip()!r}); oslo.config, like Cinder reading cinder.conf, keeps it as "
                "part of the value: put comments on their own line, starting with ; or #", f"{section}.{key}")


def section_driver(path: str, section: str, keys: dict[str, str], override: object) -> str:
    """Our driver for a section: an override, its `driver`, else what its `volume_driver` maps to."""
    from .drivers import DRIVERS

    where = f"{OPTION}: {path} [{section}]"
    driver = override if override is not None else keys.get("driver")
    volume_driver = keys.get("volume_driver")
    if driver is None:
        if volume_driver is None:
            raise InvalidParameter(f"{where}: no driver; set volume_driver (a Cinder driver class, e.g. "
                                   f"{CINDER_RBD_DRIVER}) or driver (one of {', '.join(sorted(DRIVERS))})",
                                   f"{section}.volume_driver")
        return NATIVE_CINDER_DRIVERS.get(volume_driver, "cinder")
    if driver not in DRIVERS:
        raise InvalidParameter(f"{where}: driver {driver!r} is not a known driver; known: "
                               f"{', '.join(sorted(DRIVERS))}", f"{section}.driver")
    if volume_driver is not None and driver != "cinder" and NATIVE_CINDER_DRIVERS.get(volume_driver) != driver:
        raise InvalidParameter(f"{where}: volume_driver {volume_driver} does not run on driver {driver!r}; "
                               "remove one of them, or use driver: cinder to run that Cinder class",
                               f"{section}.volume_driver")
    return driver


def backend_from_file(path: str, section: str, overrides: dict | None = None) -> dict:
    """The `backend` dict for one section, its options typed by the driver's declarations."""
    from .drivers import driver_class

    overrides = dict(overrides or {})
    sections = read_sections(path)
    refuse_inline_comments(path, "DEFAULT", sections.get("DEFAULT", {}))
    enabled = enabled_backends(path, sections)
    if section not in sections or section == "DEFAULT":
        raise InvalidParameter(f"backend: {path} has no section [{section}]; enabled backends: "
                               f"{', '.join(enabled) or 'none'}", "backend")
    if section not in enabled:
        raise InvalidParameter(f"backend: section [{section}] of {path} is not in enabled_backends "
                               f"({', '.join(enabled) or 'none'}); add it there to use it", "backend")
    keys = dict(sections[section])
    refuse_inline_comments(path, section, keys)
    types = _volume_types(path, section, keys.pop(TYPES_KEY, None))
    driver = section_driver(path, section, keys, overrides.pop("driver", None))
    opts = driver_class(driver).options
    declared = {o.name: o for o in opts}
    where = f"{OPTION}: {path} [{section}]"
    passthrough: dict[str, str] = {}
    if driver == "cinder":
        # The Cinder driver's own options are known only where cinder is installed.
        passthrough = {k: v for k, v in keys.items() if k not in declared and k != "driver"}
    else:
        unknown = sorted(set(keys) - set(declared) - set(SECTION_KEYS))
        if unknown:
            raise InvalidParameter(f"{where}: unknown option(s) {', '.join(unknown)} for driver {driver!r}; "
                                   f"allowed: {', '.join(sorted(declared))}", f"{section}.{unknown[0]}")
    options = _typed_values(path, section, keys, opts)
    if driver == "cinder" and "volume_backend_name" in keys:
        passthrough["volume_backend_name"] = keys["volume_backend_name"]
    name = overrides.pop("name", section)
    return {"name": name, "driver": driver, **options, **passthrough, **types, **overrides}


def _volume_types(path: str, section: str, text: str | None) -> dict:
    """A section's `volume_types`: a dict as JSON text (INI has no nesting), checked where the driver is built."""
    if text is None:
        return {}
    try:
        return {TYPES_KEY: json.loads(text)}
    except ValueError as exc:
        raise InvalidParameter(f"{OPTION}: {path} [{section}] {TYPES_KEY} is not valid JSON ({exc}); give a dict "
                               'on one line, e.g. {"gold": {"qos": {"total_iops_sec": 500}}}',
                               f"{section}.{TYPES_KEY}") from None


def _typed_values(path: str, section: str, keys: dict[str, str], opts: Any) -> dict[str, Any]:
    """The declared options present in the section, converted by oslo.config."""
    present = [o for o in opts if o.name in keys]
    if not present:
        return {}
    cfg = _oslo_cfg()
    conf = cfg.ConfigOpts()  # private: the process-wide cfg.CONF is never touched
    conf.register_opts([to_oslo_opt(o, cfg) for o in present], group=section)
    try:
        conf(args=[], project=None, default_config_files=[path], use_env=False)
    except cfg.Error as exc:
        raise InvalidParameter(f"{OPTION}: {path}: {exc}", OPTION) from None
    values = {}
    group = conf[section]
    for opt in present:
        try:
            values[opt.name] = getattr(group, opt.name)
        except (cfg.ConfigFileValueError, ValueError) as exc:
            reason = str(exc).split("is not valid: ", 1)[-1]
            raise InvalidParameter(
                f"{OPTION}: {path} [{section}] {opt.name} = {keys[opt.name]!r} is not valid ({reason}); "
                f"allowed: {describe_type(opt)}", f"{section}.{opt.name}") from None
    conf.clear()
    return values
