# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cinder adapter hands a Cinder driver: light objects, model updates, a private configuration.

Cinder drivers take versioned volume and snapshot objects and a `configuration`; these stand in
for them without a Cinder database or the process-wide cfg.CONF (see drivers/cinder.py).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from ..errors import InvalidParameter

# Model-update fields holding credentials are kept under a name the store seals.
SEALED_FIELDS = {"provider_auth": "provider_auth_secret"}

VOLUME_FIELDS: dict[str, Any] = {
    "provider_location": None, "provider_auth": None, "provider_id": None, "provider_geometry": None,
    "volume_type": None, "volume_type_id": None, "encryption_key_id": None, "consistencygroup": None,
    "consistencygroup_id": None, "group": None, "group_id": None, "replication_status": None,
    "replication_driver_data": None, "replication_extended_status": None, "migration_status": None,
    "attach_status": "detached", "volume_attachment": [], "admin_metadata": {}, "bootable": False,
    "project_id": None, "user_id": None, "availability_zone": "nova", "shared_targets": False,
    "service_uuid": None, "use_quota": True, "deleted": False, "snapshot_id": None, "source_volid": None,
    "previous_status": None, "scheduled_at": None, "launched_at": None, "terminated_at": None,
    "cluster_name": None,
}
SNAPSHOT_FIELDS: dict[str, Any] = {
    "provider_location": None, "provider_auth": None, "provider_id": None, "progress": "100%",
    "project_id": None, "user_id": None, "use_quota": True, "encryption_key_id": None,
    "group_snapshot": None, "group_snapshot_id": None, "cgsnapshot": None, "cgsnapshot_id": None,
    "deleted": False, "volume_type_id": None,
}


class CinderObject:
    """A light stand-in for Cinder's versioned objects: attributes, item access, no database.

    save() does nothing: what a driver changes is read back from the object (`changes`)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)
        self._initial = copy.deepcopy({k: v for k, v in fields.items() if is_plain(v)})

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def update(self, values: dict) -> None:
        for key, value in (values or {}).items():
            setattr(self, key, value)

    def save(self) -> None:
        """Nothing to write: blockstore's records are the source of truth."""

    def obj_reset_changes(self, *args: Any, **kwargs: Any) -> None:
        """Versioned-object bookkeeping some drivers call; nothing to reset here."""

    def obj_attr_is_set(self, name: str) -> bool:
        return hasattr(self, name)

    def obj_what_changed(self) -> set:
        return set(self.changes())

    def is_replicated(self) -> bool:
        return False

    def is_multiattach(self) -> bool:
        return bool(getattr(self, "multiattach", False))

    def changes(self) -> dict:
        """Fields a driver set on the object itself (instead of returning a model update)."""
        return {k: v for k, v in self.__dict__.items()
                if not k.startswith("_") and is_plain(v) and self._initial.get(k, _MISSING) != v}


_MISSING = object()


def is_plain(value: Any) -> bool:
    """JSON-able, so it can be kept in a record."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def model_fields(update: dict | None) -> dict:
    """A driver's model update as kept in driver_data: JSON-able, credentials under sealed names."""
    kept = {}
    for key, value in (update or {}).items():
        if is_plain(value):
            kept[SEALED_FIELDS.get(key, key)] = value
    return kept


def unsealed(model: dict) -> dict:
    names = {v: k for k, v in SEALED_FIELDS.items()}
    return {names.get(k, k): v for k, v in (model or {}).items()}


class Configuration:
    """Cinder's driver `configuration` object, over a private oslo.config ConfigOpts.

    Cinder's own Configuration class registers options on the process-wide cfg.CONF; this
    one keeps them in a ConfigOpts of its own, in one group named after the backend. The
    task's values are applied as each option is registered (drivers read their options in
    __init__, right after registering them), converted and checked by the option's type.
    """

    def __init__(self, cfg: Any, group: str, given: dict, attributes: dict) -> None:
        object.__setattr__(self, "_cfg", cfg)
        object.__setattr__(self, "_conf", cfg.ConfigOpts())
        object.__setattr__(self, "_given", dict(given))
        object.__setattr__(self, "_registered", {})
        object.__setattr__(self, "config_group", group)
        for key, value in attributes.items():
            object.__setattr__(self, key, value)

    def append_config_values(self, opts: list) -> None:
        conf, registered, group = self._conf, self._registered, self.config_group
        for opt in opts:
            if opt.dest in registered:
                continue
            conf.register_opt(opt, group=group)
            registered[opt.dest] = opt
            if opt.dest in self._given:
                self._apply(opt, self._given[opt.dest])

    def _apply(self, opt: Any, value: Any) -> None:
        if isinstance(value, bool) and opt.type.__class__.__name__ != "Boolean":
            value = str(value).lower()
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and \
                opt.type.__class__.__name__ == "String":
            value = str(value)
        try:
            self._conf.set_override(opt.dest, value, group=self.config_group)
        except (ValueError, TypeError) as exc:
            raise InvalidParameter(f"backend.{opt.dest}: {value!r} is not valid for the Cinder driver's option "
                                   f"{opt.dest} ({opt.type!r}): {exc}", f"backend.{opt.dest}") from None

    def unknown(self) -> list[str]:
        return sorted(k for k in self._given if k not in self._registered)

    def secret_names(self) -> list[str]:
        return sorted(name for name, opt in self._registered.items() if opt.secret)

    def safe_get(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            return None

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def set_default(self, name: str, default: Any) -> None:
        self._conf.set_default(name, default, group=self.config_group)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not plain attributes: the driver's options.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._conf[self.config_group], name)  # NoSuchOptError is an AttributeError


def volume_type_object(spec: dict | None, backend: str, volume_id: str) -> CinderObject | None:
    """The volume type a Cinder driver sees on `volume.volume_type`, as Cinder hands it over: extra specs,
    and the QoS specs (consumer front-end) as an object. qos_specs_id stays None: a driver would look it
    up in Cinder's database, and front-end specs are not the driver's to apply (Cinder's manager puts them
    in the connection info, as CinderDriver.initialize_connection does)."""
    if not spec:
        return None
    # A stable id per named type (per volume for an unnamed one), as a Cinder database would keep it.
    type_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"blockstore:{backend}:type:{spec.get('name') or volume_id}"))
    qos = CinderObject(id=None, name=None, consumer="front-end", specs={k: str(v) for k, v in
                                                                        (spec.get("qos_specs") or {}).items()})
    return CinderObject(id=type_id, name=spec.get("name") or f"blockstore-{volume_id}", description=None,
                        is_public=True, projects=[], extra_specs=dict(spec.get("extra_specs") or {}),
                        qos_specs_id=None, qos_specs=qos if spec.get("qos_specs") else None, deleted=False)
