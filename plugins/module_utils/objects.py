# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The object model: Volume, Snapshot, Connection, their status machine, and RecordSet.

RecordSet is the view of stored records a task works on.

Records are plain JSON-able dicts with a 'kind' and an 'id'; the dataclasses here
give them names and defaults. Storage objects are named by id, never by name.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import unicodedata
import uuid
from typing import Any, Callable, Iterable, Union

from .errors import Ambiguous, InvalidParameter, NotFound

VOLUME = "volume"
SNAPSHOT = "snapshot"
CONNECTION = "connection"
# One per backend name: the identity of the data the name stands for (backend_identity.py); not a storage object.
BACKEND = "backend"
# A copy of a volume's data off the backend (backups.py): kept when its volume is deleted.
BACKUP = "backup"
KINDS = (VOLUME, SNAPSHOT, CONNECTION, BACKEND, BACKUP)

# Cinder's status machine. Transient statuses are written before a long driver
# call, so a crash leaves a visible record that the next run converges.
CREATING, AVAILABLE, EXTENDING, IN_USE, DELETING, ERROR, ERROR_DELETING = (
    "creating", "available", "extending", "in-use", "deleting", "error", "error_deleting")
# A revert to a snapshot in progress (or interrupted: the volume's data is then partly reverted).
REVERTING = "reverting"
VOLUME_STATUSES = (CREATING, AVAILABLE, EXTENDING, IN_USE, DELETING, ERROR, ERROR_DELETING, REVERTING)
SNAPSHOT_STATUSES = (CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING)
# A delete that was interrupted or failed: the next delete resumes it and tolerates what is gone.
RESUMED_DELETE = (DELETING, ERROR_DELETING)
# A connection exports a volume to one host ("connected"); an attachment is a
# connection whose host also made a local block device of it ("attached").
CONNECTING, CONNECTED, ATTACHING, ATTACHED, DETACHING = (
    "connecting", "connected", "attaching", "attached", "detaching")
# A connection whose export was removed by a forced detach while its host was gone: the host's device is left
# behind, dead, and the record stays (naming it) until that host's next task on the volume removes it.
STALE = "stale"
# Statuses a record carries only while a task runs on it: one left behind marks an interrupted task.
TRANSIENT_STATUSES = (CREATING, EXTENDING, DELETING, CONNECTING, ATTACHING, DETACHING, REVERTING)

MAX_NAME_LENGTH = 255


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except (ValueError, AttributeError, TypeError):
        return False


def has_control_characters(text: str) -> bool:
    """C0, DEL and C1 (U+0080-U+009F: U+0085 is a line break, U+009B an 8-bit terminal escape)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def check_name(name: object, option: str = "name") -> str:
    """Names are labels only (objects are named by id), but keep them printable."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"{option}: must be a non-empty string, got {name!r}", option)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"{option}: longer than {MAX_NAME_LENGTH} characters", option)
    if has_control_characters(name):
        raise InvalidParameter(f"{option}: {name!r} contains control characters", option)
    if is_uuid(name):
        raise InvalidParameter(
            f"{option}: {name!r} looks like an id; a name must not be a UUID, so that lookups stay unambiguous", option)
    return name


@dataclasses.dataclass
class Volume:
    id: str
    name: str
    backend: str
    size: int
    status: str = CREATING
    description: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    source_volume_id: str | None = None
    source_snapshot_id: str | None = None
    multiattach: bool = False
    # The snapshot the volume was last reverted to; cleared when it is connected read-write again,
    # so "reverted to it, and not writable since" is what makes a revert a no-op (volumes.py).
    reverted_to: str | None = None
    # What the volume was created with (volume_types.py): {name, extra_specs, qos_specs} as cinderlib's
    # volume_type, and the pool it was placed in; None when the task asked for none.
    volume_type: dict | None = None
    pool: str | None = None
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    # Driver-private facts (file format, backing file...) kept with the record.
    driver_data: dict = dataclasses.field(default_factory=dict)
    kind: str = VOLUME

    # Fields a user sees in results and diffs; the rest is bookkeeping.
    PUBLIC = ("id", "name", "backend", "size", "status", "description", "metadata",
              "source_volume_id", "source_snapshot_id", "multiattach", "reverted_to", "volume_type", "pool",
              "created_at", "updated_at")


@dataclasses.dataclass
class Snapshot:
    id: str
    name: str
    backend: str
    volume_id: str
    volume_size: int
    status: str = CREATING
    description: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    driver_data: dict = dataclasses.field(default_factory=dict)
    kind: str = SNAPSHOT
    # The name of the group snapshot it is a member of ("" for none): one field, so records written
    # before groups existed load unchanged.
    group: str = ""

    PUBLIC = ("id", "name", "backend", "volume_id", "volume_size", "status", "description",
              "metadata", "created_at", "updated_at", "group")


@dataclasses.dataclass
class Connection:
    """A volume exported to one host, as cinderlib's Connection.

    `connector` is the host's connector properties (as os-brick gathers them);
    `connection_info` is what the driver's initialize_connection returned, in
    os-brick's shape ({"driver_volume_type": ..., "data": {...}}); `device` is
    the local attachment on that host ({"path": "/dev/loop3", "type": "block",
    ...}) or None while only connected.
    """

    id: str
    backend: str
    volume_id: str
    host: str
    connector: dict = dataclasses.field(default_factory=dict)
    connection_info: dict = dataclasses.field(default_factory=dict)
    mode: str = "rw"
    status: str = CONNECTING
    device: dict | None = None
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    driver_data: dict = dataclasses.field(default_factory=dict)
    kind: str = CONNECTION

    PUBLIC = ("id", "backend", "volume_id", "host", "connector", "connection_info", "mode", "status", "device",
              "created_at", "updated_at")


@dataclasses.dataclass
class Backup:
    """A backup of a volume in a directory (`location`): a manifest of chunks there (backups.py).

    An incremental one (`parent_id` set) shares the chunks its parent has and stores only the others;
    `volume_name` and `volume_size` stay readable after the volume is deleted.
    """

    id: str
    name: str
    backend: str
    volume_id: str
    volume_size: int
    location: str
    volume_name: str = ""
    parent_id: str | None = None
    status: str = CREATING
    # Taken while the volume was connected to a host: its data is what a crash would have left.
    crash_consistent: bool = False
    # Bytes of the volume's image, and what this backup added to the location (compressed chunks).
    size: int = 0
    stored_bytes: int = 0
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    driver_data: dict = dataclasses.field(default_factory=dict)
    kind: str = BACKUP

    PUBLIC = ("id", "name", "backend", "volume_id", "volume_name", "volume_size", "location", "parent_id",
              "status", "crash_consistent", "size", "stored_bytes", "description", "created_at", "updated_at")


OBJECT_CLASSES = {VOLUME: Volume, SNAPSHOT: Snapshot, CONNECTION: Connection, BACKUP: Backup}
StorageObject = Union[Volume, Snapshot, Connection, Backup]


def is_interrupted(conn: Connection) -> bool:
    """A connection record in a transient status (or, written by older versions, with no host) is what
    the controller writes before an attachment task runs; one that outlived its task marks a task that
    was killed on the way. Its host, when set, is the host the task worked for."""
    return not conn.host or conn.status in (CONNECTING, ATTACHING, DETACHING)


def is_live(conn: Connection) -> bool:
    """A connection that gives its host access: not a killed task's record, not a stale device's (its export
    was removed by a forced detach)."""
    return not is_interrupted(conn) and conn.status != STALE


# What a host is told of another host's connection (`others_view`): enough for its plan (whether the volume
# is shared, with whom, an initiator name used twice, a killed task's record), never credentials or devices.
OTHERS_FIELDS = ("kind", "id", "backend", "volume_id", "host", "mode", "status", "created_at", "updated_at")
OTHERS_CONNECTOR = ("host", "initiator")


def others_view(record: dict) -> dict:
    """Another host's connection record as a host half is sent it."""
    shown = {k: record[k] for k in OTHERS_FIELDS if k in record}
    shown["connector"] = {k: v for k, v in (record.get("connector") or {}).items() if k in OTHERS_CONNECTOR}
    return shown


def own_connections(records: list[dict], whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
    """`records` as the host `whoami()` names is sent them: its own connections and those naming no host (a
    killed task's, cleaned up by whichever host runs next) whole, other hosts' as `others_view`; and the ids of
    those. `whoami` is asked only when there is another host's connection to tell apart."""
    if not any(r["kind"] == CONNECTION and r.get("host") for r in records):
        return records, set()
    mine = whoami()
    others = {r["id"] for r in records if r["kind"] == CONNECTION and r.get("host") not in ("", mine)}
    return [others_view(r) if r["id"] in others else r for r in records], others


def from_record(record: dict) -> StorageObject:
    cls = OBJECT_CLASSES[record["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: copy.deepcopy(v) for k, v in record.items() if k in names})


def to_record(obj: StorageObject) -> dict:
    return dataclasses.asdict(obj)


def public_view(obj: StorageObject | None) -> dict | None:
    if obj is None:
        return None
    return {name: copy.deepcopy(getattr(obj, name)) for name in obj.PUBLIC}


class RecordSet:
    """The records one task works on, with the changes it makes.

    The action plugin fills it from the controller-side store; the module changes
    it and sends back `changes()`, which the action plugin writes to the store.
    """

    def __init__(self, backend: str, records: Iterable[dict] = ()) -> None:
        self.backend = backend
        self._records: dict[str, dict] = {}
        self._upserts: dict[str, dict] = {}
        self._deletes: dict[str, str] = {}
        for record in records:
            if record.get("backend") == backend:
                self._records[record["id"]] = record

    # lookups -------------------------------------------------------------
    def all(self, kind: str) -> list[StorageObject]:
        return [from_record(r) for r in self._records.values() if r["kind"] == kind]

    def get(self, kind: str, object_id: str) -> StorageObject | None:
        record = self._records.get(object_id)
        return from_record(record) if record and record["kind"] == kind else None

    def find(self, kind: str, **filters: Any) -> list[StorageObject]:
        return [o for o in self.all(kind)
                if all(v is None or getattr(o, k) == v for k, v in filters.items())]

    def lookup(self, kind: str, ref: str, option: str, required: bool = True) -> Volume | Snapshot | None:
        """Find by id or by name; several matches by name is an error asking for the id."""
        if is_uuid(ref):
            found = self.get(kind, ref.lower())
            matches = [found] if found else []
        else:
            matches = self.find(kind, name=ref)
        if len(matches) > 1:
            ids = ", ".join(sorted(m.id for m in matches))
            raise Ambiguous(f"{option}: several {kind}s are named {ref!r} on backend "
                            f"{self.backend!r} ({ids}); give the id instead", option)
        if not matches:
            if required:
                raise NotFound(f"{option}: no {kind} {ref!r} on backend {self.backend!r}", option)
            return None
        return matches[0]

    # changes -------------------------------------------------------------
    def put(self, obj: StorageObject) -> None:
        record = to_record(obj)
        self._records[obj.id] = record
        self._upserts[obj.id] = record
        self._deletes.pop(obj.id, None)

    def remove(self, obj: StorageObject) -> None:
        self._records.pop(obj.id, None)
        self._upserts.pop(obj.id, None)
        self._deletes[obj.id] = obj.kind

    def changes(self) -> dict:
        return {"upserts": list(self._upserts.values()),
                "deletes": [{"kind": k, "id": i} for i, k in self._deletes.items()]}
