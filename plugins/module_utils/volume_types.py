# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volume types, extra specs, QoS and pool: what a volume is created with, checked and resolved.

A backend may define named volume types (`backend.volume_types`: {name: {extra_specs, qos}}), as
Cinder's volume types carry extra specs and front-end QoS specs. A task asks for `volume_type`,
`extra_specs`, `qos` and `pool`; `requested_spec` resolves them into what the volume's record keeps
(`Volume.volume_type`, in the shape of cinderlib's volume_type: name, extra_specs, qos_specs).
Which of them a driver honours is the driver's to say (`drivers.base.Driver.check_spec`).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidParameter

# Cinder's front-end QoS keys (and QEMU's throttle names): a total limit excludes the per-direction ones.
QOS_KEYS = ("total_iops_sec", "read_iops_sec", "write_iops_sec",
            "total_bytes_sec", "read_bytes_sec", "write_bytes_sec")
TYPE_KEYS = ("extra_specs", "qos")
TYPES_KEY = "volume_types"


def check_qos(qos: Any, option: str) -> dict[str, int]:
    """QoS specs as positive integers; unknown keys and a total mixed with a direction refused."""
    if not isinstance(qos, dict):
        raise InvalidParameter(f"{option}: must be a dict of {', '.join(QOS_KEYS)}, got {qos!r}", option)
    unknown = sorted(str(k) for k in qos if k not in QOS_KEYS)
    if unknown:
        raise InvalidParameter(f"{option}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(QOS_KEYS)}",
                               option)
    checked = {}
    for key, value in qos.items():
        if value is None:  # a suboption the task left out
            continue
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() or \
                int(value) <= 0:
            raise InvalidParameter(f"{option}.{key}: {value!r} must be a positive integer", f"{option}.{key}")
        checked[key] = int(value)
    for unit in ("iops", "bytes"):
        directions = [k for k in (f"read_{unit}_sec", f"write_{unit}_sec") if k in checked]
        if f"total_{unit}_sec" in checked and directions:
            # Cinder's front-end keys, like QEMU's throttle, refuse a total with a per-direction limit.
            raise InvalidParameter(f"{option}: total_{unit}_sec cannot be combined with {', '.join(directions)}; "
                                   "give a total or per-direction limits", option)
    return checked


def check_extra_specs(specs: Any, option: str) -> dict[str, str]:
    """Extra specs as Cinder keeps them: text keys and text values."""
    if not isinstance(specs, dict):
        raise InvalidParameter(f"{option}: must be a dict of text keys and values, got {specs!r}", option)
    checked = {}
    for key, value in specs.items():
        if not isinstance(key, str) or not key or isinstance(value, (dict, list)) or value is None:
            raise InvalidParameter(f"{option}: {key!r}: {value!r} must be a text key with a text, number or "
                                   "boolean value", option)
        checked[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return checked


def check_types(types: Any, where: str = "backend") -> dict[str, dict]:
    """A backend's `volume_types`, each {extra_specs, qos} checked."""
    option = f"{where}.{TYPES_KEY}"
    if types is None:
        return {}
    if not isinstance(types, dict):
        raise InvalidParameter(f"{option}: must be a dict of volume type names, each with extra_specs and qos, "
                               f"got {types!r}", option)
    checked = {}
    for name, body in types.items():
        here = f"{option}.{name}"
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameter(f"{option}: {name!r} is not a volume type name", option)
        if not isinstance(body, dict) or set(body) - set(TYPE_KEYS):
            raise InvalidParameter(f"{here}: must be a dict with only {' and '.join(TYPE_KEYS)}, got {body!r}", here)
        checked[name] = {"extra_specs": check_extra_specs(body.get("extra_specs") or {}, f"{here}.extra_specs"),
                         "qos": check_qos(body.get("qos") or {}, f"{here}.qos")}
    return checked


def requested_spec(params: dict, types: dict[str, dict], backend: str, had: dict | None = None) -> dict | None:
    """The volume type a task asks for ({name, extra_specs, qos_specs}), or None when it asks none of
    volume_type, extra_specs and qos. The task's extra_specs add to (and win over) the type's; its qos,
    when given, replaces the type's. For an existing volume (`had`, its record's), what the task does
    not give stays as it was."""
    name, extra, qos = params.get("volume_type"), params.get("extra_specs"), params.get("qos")
    if name is None and extra is None and qos is None:
        return None
    if name is not None:
        if name not in types:
            defined = ", ".join(sorted(types)) or "none (define them in backend.volume_types)"
            raise InvalidParameter(f"volume_type: {name!r} is not a volume type of backend {backend!r}; defined: "
                                   f"{defined}", "volume_type")
        base = {"name": name, "extra_specs": types[name]["extra_specs"], "qos_specs": types[name]["qos"]}
    else:
        base = {"name": None, "extra_specs": {}, "qos_specs": {}, **(had or {})}
    extra_specs = {**base["extra_specs"], **check_extra_specs(extra if extra is not None else {}, "extra_specs")}
    qos_specs = check_qos(qos, "qos") if qos is not None else dict(base["qos_specs"])
    return {"name": base["name"], "extra_specs": extra_specs, "qos_specs": qos_specs}


def requested_pool(params: dict) -> str | None:
    pool = params.get("pool")
    if pool is not None and (not isinstance(pool, str) or not pool.strip()):
        raise InvalidParameter(f"pool: must be a non-empty pool name, got {pool!r}", "pool")
    return pool


def qos_of(spec: dict | None) -> dict[str, int]:
    return dict((spec or {}).get("qos_specs") or {})


def with_front_end_qos(info: dict, spec: dict | None) -> dict:
    """A connection info carrying the volume's QoS as Cinder's front-end specs (`data.qos_specs`), as Cinder's
    volume manager hands them to the consumer: the attach path enforces them or refuses (connectors.choose)."""
    if qos_of(spec):
        info.setdefault("data", {})["qos_specs"] = qos_of(spec)
    return info


def extra_specs_of(spec: dict | None) -> dict[str, str]:
    return dict((spec or {}).get("extra_specs") or {})


def describe(spec: dict | None) -> str:
    """A spec in words, for plan messages."""
    if not spec:
        return "no volume type"
    parts = [f"type {spec['name']!r}"] if spec.get("name") else []
    if spec.get("extra_specs"):
        parts.append("extra specs " + ", ".join(f"{k}={v}" for k, v in sorted(spec["extra_specs"].items())))
    if spec.get("qos_specs"):
        parts.append("qos " + ", ".join(f"{k}={v}" for k, v in sorted(spec["qos_specs"].items())))
    return "; ".join(parts) or "no extra specs and no qos"
