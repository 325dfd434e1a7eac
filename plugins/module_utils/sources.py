# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading state to import (storage_state): cinderlib's JSON dumps and database, and our own JSON.

Sources that `state: imported` reads (`src`):
  - cinderlib JSON: `cinderlib.dumps()` (a list of backends), `Backend.dumps`
    ({"class": "Backend", "backend": {...}, "volumes": [...]}), or one object's dump
    ({"class": "Volume"|"Snapshot"|"Connection", "backend": {...}, "ovo": {...}}), where
    "ovo" is a Cinder versioned object ({"versioned_object.data": ...}). Volumes carry their
    snapshots and attachments (connection_info = {"conn", "connector", "device"}); a snapshot's
    or a connection's own dump carries its volume (data.volume), imported with it.
    tests/fixtures/cinderlib/ holds real dumps.
  - cinderlib's `db` persistence: a SQLAlchemy URL of a database in Cinder's schema
    (tables volumes, snapshots, volume_attachment, volume_metadata, snapshot_metadata,
    volume_admin_metadata; soft-deleted rows skipped). A volume's backend is the
    middle of its host (`host@backend#pool`).
  - our own state JSON (serialization.py), e.g. from `state: exported`.

Mapped: ids (kept, so drivers find the same images), names, sizes, statuses, descriptions,
metadata, sources (snapshot_id, source_volid), multiattach, times, the driver's
provider_* fields (into driver_data, as the cinder driver keeps them), snapshots, and
connections (host, connector, connection info, mode). Not mapped, and reported in the
result's `unmapped`: statuses we do not have, volume types and their extra specs, encryption
keys, consistency groups and groups, replication, admin and glance metadata, local devices of
attachments (reattach with storage_attachment), objects of other backends, and snapshots or
connections whose volume is not in the source.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from typing import Any

from .errors import InvalidParameter, MissingDependency, StateStoreError
from .objects import (
    AVAILABLE,
    BACKEND,
    CONNECTED,
    CONNECTION,
    SNAPSHOT,
    SNAPSHOT_STATUSES,
    VOLUME,
    VOLUME_STATUSES,
    Connection,
    Snapshot,
    Volume,
    is_uuid,
    to_record,
)
from .serialization import loads as load_state

# oslo.versionedobjects' serial namespace, the one Cinder's objects (and so cinderlib's dumps) use.
OVO_NAMESPACE = "versioned_object"
DEFAULT_TYPE = "__DEFAULT__"
# Cinder statuses we keep as they are; the rest become `error` and are reported.
SEALED_FIELDS = {"provider_auth": "provider_auth_secret"}
PROVIDER_FIELDS = ("provider_location", "provider_auth", "provider_id", "provider_geometry")
# Fields with no counterpart here: reported when they carry something.
UNMAPPED_VOLUME_FIELDS = ("encryption_key_id", "consistencygroup_id", "group_id",
                          "replication_driver_data", "migration_status")


class Report:
    def __init__(self) -> None:
        self.unmapped: list[dict] = []

    def add(self, kind: str, object_id: Any, what: str) -> None:
        self.unmapped.append({"kind": kind, "id": object_id, "reason": what})


# cinderlib JSON --------------------------------------------------------------
def _ovo(primitive: Any) -> tuple[str | None, dict]:
    """(object name, data) of a versioned-object primitive."""
    if not isinstance(primitive, dict) or f"{OVO_NAMESPACE}.data" not in primitive:
        return None, {}
    data = primitive[f"{OVO_NAMESPACE}.data"]
    return primitive.get(f"{OVO_NAMESPACE}.name"), data if isinstance(data, dict) else {}


def _ovo_list(primitive: Any) -> list[dict]:
    _name, data = _ovo(primitive)
    objects = data.get("objects") if data else primitive if isinstance(primitive, list) else None
    return [o for o in objects or [] if isinstance(o, dict)]


def _backend_of_host(host: Any) -> str | None:
    if not isinstance(host, str) or "@" not in host:
        return None
    return host.split("@", 1)[1].split("#", 1)[0]


def _cinderlib_objects(document: Any, where: str) -> list[tuple[str, str | None, dict]]:
    """(kind, cinderlib backend name, ovo data) of every object a cinderlib dump holds."""
    found: list[tuple[str, str | None, dict]] = []
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "class" not in item:
            raise InvalidParameter(f"src: {where}: item {index} is not a cinderlib object (no 'class' key)", "src")
        backend = (item.get("backend") or {}).get("volume_backend_name") if isinstance(item.get("backend"), dict) \
            else item.get("backend")
        if item["class"] == "Backend":
            for volume in item.get("volumes") or []:
                found += _cinderlib_objects(dict(volume, backend={"volume_backend_name": backend}), where)
            continue
        _name, data = _ovo(item.get("ovo"))
        if not data:
            raise InvalidParameter(f"src: {where}: item {index} ({item['class']}) has no versioned object data "
                                   f"('ovo' with {OVO_NAMESPACE}.data)", "src")
        kind = {"Volume": VOLUME, "Snapshot": SNAPSHOT, "Connection": CONNECTION}.get(item["class"])
        if kind is None:
            raise InvalidParameter(f"src: {where}: item {index}: unknown cinderlib class {item['class']!r}", "src")
        if kind == VOLUME:
            found += _volume_objects(data, backend)
            continue
        found.append((kind, backend, data))
        # A snapshot's or a connection's own dump carries its volume (ovo.data.volume): imported with it.
        volume = _ovo(data.get("volume"))[1]
        if volume:
            found += _volume_objects(volume, backend)
    return found


def _volume_objects(data: dict, backend: str | None) -> list[tuple[str, str | None, dict]]:
    """A volume's ovo data and the snapshots and attachments it carries."""
    found: list[tuple[str, str | None, dict]] = [(VOLUME, backend, data)]
    for snap in _ovo_list(data.get("snapshots")):
        found.append((SNAPSHOT, backend, _ovo(snap)[1]))
    for attachment in _ovo_list(data.get("volume_attachment")):
        found.append((CONNECTION, backend, _ovo(attachment)[1]))
    return found


# cinderlib db persistence ------------------------------------------------------
def _refuse_missing_sqlite_file(url: Any) -> None:
    """SQLite creates a missing database file on connect: a source must exist, and reading it creates nothing."""
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return  # in memory, or a sqlite URI (uri=true) whose mode SQLite enforces
    if not os.path.isfile(database):
        raise InvalidParameter(f"src: the SQLite database {database} does not exist (or is not a file); give the "
                               "path of the file cinderlib's db persistence wrote (sqlite:///ABSOLUTE/PATH)", "src")


def _db_objects(url: str) -> list[tuple[str, str | None, dict]]:
    try:
        import sqlalchemy as sa
    except ImportError:
        raise MissingDependency("src: reading cinderlib's db persistence needs the Python library sqlalchemy on "
                                "the controller", "sqlalchemy", "src") from None
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise InvalidParameter(f"src: not a database URL SQLAlchemy can open: {exc}", "src") from None
    _refuse_missing_sqlite_file(engine.url)
    try:
        meta = sa.MetaData()
        try:
            meta.reflect(engine, only=lambda name, _meta: name in (
                "volumes", "snapshots", "volume_attachment", "volume_metadata", "snapshot_metadata",
                "volume_admin_metadata", "volume_types", "volume_type_extra_specs"))
        except sa.exc.SQLAlchemyError as exc:
            raise StateStoreError(f"src: cannot read the database: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0]}", "src") from None
        if "volumes" not in meta.tables:
            raise InvalidParameter("src: the database has no table 'volumes': not cinderlib's db persistence "
                                   "(Cinder's schema)", "src")
        with engine.connect() as conn:
            def rows(table: str) -> list[dict]:
                if table not in meta.tables:
                    return []
                t = meta.tables[table]
                query = sa.select(t)
                if "deleted" in t.c:
                    query = query.where(sa.or_(t.c.deleted.is_(None), t.c.deleted == sa.false()))
                return [dict(r._mapping) for r in conn.execute(query)]

            def keyed(table: str, column: str) -> dict[str, dict]:
                result: dict[str, dict] = {}
                for row in rows(table):
                    result.setdefault(row[column], {})[row["key"]] = row["value"]
                return result

            volumes = rows("volumes")
            snapshots = rows("snapshots")
            attachments = rows("volume_attachment")
            metadata = keyed("volume_metadata", "volume_id")
            admin = keyed("volume_admin_metadata", "volume_id")
            snap_metadata = keyed("snapshot_metadata", "snapshot_id")
            specs = keyed("volume_type_extra_specs", "volume_type_id")
            types = {row["id"]: {"name": row.get("name"), "extra_specs": specs.get(row["id"], {})}
                     for row in rows("volume_types")}
    finally:
        engine.dispose()
    backend_of = {}
    found: list[tuple[str, str | None, dict]] = []
    for row in volumes:
        backend_of[row["id"]] = _backend_of_host(row.get("host"))
        found.append((VOLUME, backend_of[row["id"]], dict(
            row, metadata=metadata.get(row["id"], {}), admin_metadata=admin.get(row["id"], {}),
            volume_type=types.get(row.get("volume_type_id")))))
    for row in snapshots:
        found.append((SNAPSHOT, backend_of.get(row["volume_id"]) or row.get("progress"),
                      dict(row, metadata=snap_metadata.get(row["id"], {}))))
    for row in attachments:
        info = row.get("connection_info")
        try:
            info = json.loads(info) if isinstance(info, str) else (info or {})
        except ValueError:
            info = {"unparsed": info}
        found.append((CONNECTION, backend_of.get(row["volume_id"]), dict(row, connection_info=info)))
    return found


# mapping ----------------------------------------------------------------------
def _time(value: Any) -> str | None:
    """In the one form records carry (objects.now()): cinderlib's JSON has `...Z`, its database naive UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            # Python 3.9's fromisoformat knows no `Z`.
            value = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            return value
    if not isinstance(value, datetime.datetime):
        return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).isoformat(timespec="seconds")


def _status(kind: str, object_id: str, status: Any, allowed: tuple, report: Report) -> str:
    if status in allowed:
        return status
    report.add(kind, object_id, f"status {status!r} has no equivalent here; imported as error")
    return "error"


def _provider(data: dict) -> dict:
    model = {SEALED_FIELDS.get(k, k): data[k] for k in PROVIDER_FIELDS if data.get(k) is not None}
    return {"imported_from": "cinderlib", "size": data.get("size"), "model": model} if model or "size" in data \
        else {"imported_from": "cinderlib", "model": model}


def _name(data: dict, prefix: str) -> str:
    name = data.get("display_name")
    if not isinstance(name, str) or not name.strip() or is_uuid(name.strip().lower()):
        return f"{prefix}-{data['id']}"
    return name


def _map_volume(data: dict, backend: str, report: Report) -> dict:
    vid = data["id"]
    for field in UNMAPPED_VOLUME_FIELDS:
        if data.get(field):
            report.add(VOLUME, vid, f"{field} {data[field]!r} is not mapped")
    volume_type = data.get("volume_type")
    if isinstance(volume_type, dict):
        volume_type = _ovo(volume_type)[1] or volume_type
    if isinstance(volume_type, dict) and volume_type:
        # Cinder's default type without extra specs says nothing a record here could miss.
        if volume_type.get("name") != DEFAULT_TYPE or volume_type.get("extra_specs"):
            report.add(VOLUME, vid, f"volume type {volume_type.get('name')!r} (extra specs "
                       f"{volume_type.get('extra_specs') or {}}) is not mapped")
    elif data.get("volume_type_id"):
        report.add(VOLUME, vid, f"volume_type_id {data['volume_type_id']!r} is not mapped")
    for field in ("admin_metadata", "glance_metadata"):
        if data.get(field):
            report.add(VOLUME, vid, f"{field} {sorted(data[field])} is not mapped")
    if data.get("replication_status") not in (None, "disabled", "not-capable"):
        report.add(VOLUME, vid, f"replication_status {data['replication_status']!r} is not mapped")
    metadata = data.get("metadata") or {}
    volume = Volume(
        id=vid, name=_name(data, "volume"), backend=backend, size=int(data.get("size") or 0),
        status=_status(VOLUME, vid, data.get("status"), VOLUME_STATUSES, report),
        description=data.get("display_description") or "",
        metadata={str(k): v for k, v in metadata.items()} if isinstance(metadata, dict) else {},
        source_volume_id=data.get("source_volid"), source_snapshot_id=data.get("snapshot_id"),
        multiattach=bool(data.get("multiattach")), driver_data=_provider(data))
    volume.created_at = _time(data.get("created_at")) or volume.created_at
    volume.updated_at = _time(data.get("updated_at")) or volume.created_at
    return to_record(volume)


def _map_snapshot(data: dict, backend: str, report: Report) -> dict:
    sid = data["id"]
    for field in ("encryption_key_id", "group_snapshot_id", "cgsnapshot_id"):
        if data.get(field):
            report.add(SNAPSHOT, sid, f"{field} {data[field]!r} is not mapped")
    metadata = data.get("metadata") or {}
    snapshot = Snapshot(
        id=sid, name=_name(data, "snapshot"), backend=backend, volume_id=data.get("volume_id"),
        volume_size=int(data.get("volume_size") or 0),
        status=_status(SNAPSHOT, sid, data.get("status"), SNAPSHOT_STATUSES, report),
        description=data.get("display_description") or "",
        metadata={str(k): v for k, v in metadata.items()} if isinstance(metadata, dict) else {},
        driver_data=_provider({k: v for k, v in data.items() if k != "size"}))
    snapshot.created_at = _time(data.get("created_at")) or snapshot.created_at
    snapshot.updated_at = _time(data.get("updated_at")) or snapshot.created_at
    return to_record(snapshot)


def _map_connection(data: dict, backend: str, report: Report) -> dict:
    cid = data["id"]
    info = data.get("connection_info") or {}
    connector = info.get("connector") or {}
    if not connector and isinstance(data.get("connector"), str):
        try:
            connector = json.loads(data["connector"])
        except ValueError:
            connector = {}
    if info.get("device"):
        device = info["device"]
        report.add(CONNECTION, cid, f"local attachment {device.get('path') if isinstance(device, dict) else device!r} "
                   "is not imported; the connection is imported as connected: reattach with storage_attachment")
    host = data.get("attached_host") or connector.get("host") or "unknown"
    mode = data.get("attach_mode") if data.get("attach_mode") in ("rw", "ro") else "rw"
    connection = Connection(id=cid, backend=backend, volume_id=data.get("volume_id"), host=host,
                            connector=connector, connection_info=info.get("conn") or {}, mode=mode,
                            status=CONNECTED, driver_data={"imported_from": "cinderlib"})
    connection.created_at = _time(data.get("created_at") or data.get("attach_time")) or connection.created_at
    connection.updated_at = _time(data.get("updated_at")) or connection.created_at
    return to_record(connection)


MAPPERS = {VOLUME: _map_volume, SNAPSHOT: _map_snapshot, CONNECTION: _map_connection}


def read_source(src: str, backend: str, src_backend: str | None) -> tuple[list[dict], list[dict]]:
    """(records for `backend`, unmapped report) from a cinderlib dump, database or our own JSON."""
    report = Report()
    if not isinstance(src, str) or not src:
        raise InvalidParameter("src: required with state imported: a cinderlib JSON file, a cinderlib db "
                               "persistence URL, or a state file exported by this collection", "src")
    if re.match(r"^[a-z][a-z0-9+]*://", src):
        objects = _db_objects(src)
        where = "database"
    else:
        if not os.path.isfile(src):
            raise InvalidParameter(f"src: {src} does not exist (or is not a file)", "src")
        with open(src, encoding="utf-8") as handle:
            text = handle.read()
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidParameter(f"src: {src} is not JSON ({exc})", "src") from None
        if isinstance(document, dict) and "records" in document and "schema_version" in document:
            return _our_records(load_state(text, f"src: {src}"), backend, src_backend), []
        objects = _cinderlib_objects(document, src)
        where = src
    names = sorted({b for _k, b, _d in objects if b})
    if src_backend is None:
        if len(names) > 1:
            raise InvalidParameter(f"src_backend: {where} holds several cinderlib backends ({', '.join(names)}); "
                                   "name the one to import", "src_backend")
        src_backend = names[0] if names else None
    records: dict[str, dict] = {}
    seen: set[str] = set()
    for kind, source_backend, raw in objects:
        data = raw
        if not isinstance(data.get("id"), str) or not is_uuid(data["id"].lower()):
            report.add(kind, data.get("id"), "no UUID id; not imported")
            continue
        if data["id"].lower() in seen:
            continue  # an object a dump holds twice (a snapshot's dump embeds its volume): the outer one counts
        seen.add(data["id"].lower())
        if source_backend not in (None, src_backend):
            report.add(kind, data["id"], f"belongs to cinderlib backend {source_backend!r}, not "
                       f"{src_backend!r}; not imported")
            continue
        data = dict(raw, id=raw["id"].lower())
        records[data["id"]] = MAPPERS[kind](data, backend, report)
    volume_ids = {i for i, r in records.items() if r["kind"] == VOLUME}
    for object_id, record in list(records.items()):
        if record["kind"] != VOLUME and record.get("volume_id") not in volume_ids:
            report.add(record["kind"], object_id, f"its volume {record.get('volume_id')} is not in the source; "
                       "not imported")
            del records[object_id]
    for object_id, record in records.items():
        if record["kind"] == VOLUME and record["status"] == AVAILABLE and any(
                r["kind"] == CONNECTION and r["volume_id"] == object_id for r in records.values()):
            record["status"] = "in-use"
    return list(records.values()), report.unmapped


def _our_records(records: dict[str, dict], backend: str, src_backend: str | None) -> list[dict]:
    names = sorted({r["backend"] for r in records.values()})
    if src_backend is None:
        if len(names) > 1:
            raise InvalidParameter(f"src_backend: the state file holds several backends ({', '.join(names)}); name "
                                   "the one to import", "src_backend")
        src_backend = names[0] if names else None
    # A backend record describes the source store's backend, not the one imported into (backend_identity.py).
    return [dict(r, backend=backend) for r in records.values() if r["backend"] == src_backend and r["kind"] != BACKEND]
