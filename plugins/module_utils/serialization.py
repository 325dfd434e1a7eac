# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The versioned JSON form of the state: one document holding every record.

    {"schema_version": 1, "records": {"<id>": {"kind": "volume", "id": ..., ...}}}

A document from a newer schema is refused (never rewritten by older code); a
record is validated whole when it is read (its id, and each field's type), so a
bad record is reported with its store, id and field before anything acts on it.
"""

from __future__ import annotations

import json
import re
from typing import Iterable

from .errors import StateStoreError
from .objects import BACKEND, BACKUP, CONNECTION, KINDS, SNAPSHOT, SNAPSHOT_STATUSES, VOLUME, VOLUME_STATUSES, is_uuid

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("kind", "id", "backend")
# Ids end up in file names and commands: a UUID, or this short form (letters, digits, - and _), nothing else.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
# Per kind: field -> (what it must be, the test). Required fields are those the objects cannot default.
_TEXT = ("a string", lambda v: isinstance(v, str))
_NAME = ("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))
_SIZE = ("an integer number of GiB", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
_DICT = ("an object", lambda v: isinstance(v, dict))
_OPT_TEXT = ("a string or null", lambda v: v is None or isinstance(v, str))
SHAPES = {
    VOLUME: {"name": _NAME, "size": _SIZE, "status": ("one of " + ", ".join(VOLUME_STATUSES),
                                                      lambda v: v in VOLUME_STATUSES),
             "description": _TEXT, "metadata": _DICT, "driver_data": _DICT,
             "source_volume_id": _OPT_TEXT, "source_snapshot_id": _OPT_TEXT, "reverted_to": _OPT_TEXT},
    SNAPSHOT: {"name": _NAME, "volume_id": _TEXT, "volume_size": _SIZE,
               "status": ("one of " + ", ".join(SNAPSHOT_STATUSES), lambda v: v in SNAPSHOT_STATUSES),
               "description": _TEXT, "metadata": _DICT, "driver_data": _DICT, "group": _TEXT},
    CONNECTION: {"volume_id": _TEXT, "host": _TEXT, "status": _TEXT, "connector": _DICT,
                 "connection_info": _DICT, "driver_data": _DICT},
    BACKEND: {"name": _NAME, "driver": _NAME, "fingerprint": _NAME, "locator": _DICT},
    BACKUP: {"name": _NAME, "volume_id": _TEXT, "volume_size": _SIZE, "location": _NAME, "parent_id": _OPT_TEXT,
             "status": ("one of " + ", ".join(SNAPSHOT_STATUSES), lambda v: v in SNAPSHOT_STATUSES),
             "crash_consistent": ("true or false", lambda v: isinstance(v, bool)),
             "description": _TEXT, "driver_data": _DICT},
}
REQUIRED = {VOLUME: ("name", "size"), SNAPSHOT: ("name", "volume_id", "volume_size"),
            CONNECTION: ("volume_id", "host"), BACKEND: ("driver", "fingerprint", "locator"),
            BACKUP: ("name", "volume_id", "volume_size", "location")}


def is_safe_id(value: object) -> bool:
    return isinstance(value, str) and (is_uuid(value) or SAFE_ID.match(value) is not None)


def check_record(record: object, where: str) -> dict:
    """Refuse a record this code could not act on: identity, id form, and each known field's type."""
    if not isinstance(record, dict):
        raise StateStoreError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if not isinstance(record.get(f), str)]
    if missing:
        raise StateStoreError(f"{where}: record lacks {', '.join(missing)}")
    if record["kind"] not in KINDS:
        raise StateStoreError(f"{where}: unknown record kind {record['kind']!r}; known: {', '.join(KINDS)}")
    if not is_safe_id(record["id"]):
        raise StateStoreError(f"{where}: id {record['id']!r} is not a UUID (nor letters, digits, - and _ only); "
                              "it is refused before it can reach a path or a command")
    kind = record["kind"]
    for field in REQUIRED[kind]:
        if field not in record:
            raise StateStoreError(f"{where}: {kind} record {record['id']!r} lacks field {field!r}")
    for field, (expected, valid) in SHAPES[kind].items():
        if field in record and not valid(record[field]):
            raise StateStoreError(f"{where}: {kind} record {record['id']!r}: field {field!r} must be {expected}, "
                                  f"got {record[field]!r}")
    return record


def _refuse_duplicate_keys(pairs: list) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def check_version(version: object, where: str) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateStoreError(f"{where}: schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise StateStoreError(
            f"{where}: written by a newer blockstore.storage (schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}); upgrade the collection; it is left untouched")
    if version < 1:
        raise StateStoreError(f"{where}: schema_version {version} is not valid")


def loads(text: str, where: str = "state") -> dict[str, dict]:
    """Parse a state document into {id: record}."""
    if not text.strip():
        return {}
    try:
        # A repeated key (two records under one id) would silently keep the last one: refused.
        document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except ValueError as exc:
        raise StateStoreError(f"{where}: not valid JSON ({exc}); the file is left untouched, "
                              "restore it from a backup or move it away") from None
    if not isinstance(document, dict) or "records" not in document:
        raise StateStoreError(f"{where}: not a blockstore state document (no 'records' key)")
    check_version(document.get("schema_version"), where)
    records = document["records"]
    if not isinstance(records, dict):
        raise StateStoreError(f"{where}: 'records' must be an object keyed by id")
    for object_id, record in records.items():
        if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"] != object_id:
            raise StateStoreError(f"{where}: record {object_id!r} carries id {record['id']!r}")
        check_record(record, f"{where}: record {object_id!r}")
    return records


def dumps(records: dict[str, dict] | Iterable[dict]) -> str:
    if not isinstance(records, dict):
        records = {r["id"]: r for r in records}
    # json.dumps then one write is measured 2-3x faster than json.dump to a file.
    return json.dumps({"schema_version": SCHEMA_VERSION, "records": records},
                      sort_keys=True, separators=(",", ":"))
