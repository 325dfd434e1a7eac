# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups off the backend (storage_backup): a volume's data as chunks in a directory, full or incremental.

Layout of a backup location (a directory on the host where the backend's work runs):

    chunks/<first two hex digits>/<sha256>   one fixed-size piece of an image, zlib-compressed, named by the
                                             sha256 of its uncompressed bytes (so equal pieces are stored once)
    manifests/<backup id>.json               per backup: the chunk size, the image size, each chunk's digest
                                             (null: all zeros, not stored) and the sha256 of the whole image
    tmp/                                     images being read or assembled (removed when the task ends)

An incremental backup names its parent; it stores only the chunks that neither the location nor its parent
has, which for a volume whose blocks changed since the parent is the block-level difference. A backup is
read from a temporary snapshot (a consistent image; crash-consistent when the volume is connected), and
restored by assembling the image aside, verifying every chunk and the whole image, and only then writing it
into the volume, so a bad chunk never reaches the volume.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import zlib
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Iterator

from .commands import run
from .drivers.base import Driver
from .errors import Conflict, DriverError, InvalidParameter, NotFound
from .handler import Handler, Task
from .host_devices import refuse_held_open
from .objects import (
    AVAILABLE,
    BACKUP,
    CONNECTION,
    CREATING,
    DELETING,
    IN_USE,
    REVERTING,
    VOLUME,
    Backup,
    RecordSet,
    Snapshot,
    Volume,
    check_name,
    is_live,
    public_view,
)
from .plan import Action, Plan, Resource, Step, by_ref, check_id
from .sealing import mask
from .units import GiB

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

CHUNK_SIZE = 4 * 1024 * 1024
MANIFEST_FORMAT = 1
BACKUP_STATES = ("present", "absent", "restored")
# driver_data key of a volume restored from a backup: which one (a re-run without force then does nothing).
RESTORED_FROM = "restored_from_backup"


class BackupCorrupt(DriverError):
    """A chunk or manifest that does not hold what the manifest says."""


# the chunk repository (a directory) ---------------------------------------
def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Repository:
    """One backup location: its chunks and manifests."""

    def __init__(self, location: str) -> None:
        self.location = location

    def chunk_path(self, digest: str) -> str:
        return os.path.join(self.location, "chunks", digest[:2], digest)

    def manifest_path(self, backup_id: str) -> str:
        return os.path.join(self.location, "manifests", f"{backup_id}.json")

    def tmp_path(self, name: str) -> str:
        return os.path.join(self.location, "tmp", name)

    def prepare(self) -> None:
        for sub in ("chunks", "manifests", "tmp"):
            os.makedirs(os.path.join(self.location, sub), mode=0o700, exist_ok=True)

    def has_chunk(self, digest: str) -> bool:
        return os.path.exists(self.chunk_path(digest))

    def put_chunk(self, digest: str, data: bytes) -> int:
        """Store one chunk unless it is there; returns the bytes written (0: it was there)."""
        path = self.chunk_path(digest)
        if os.path.exists(path):
            return 0
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        packed = zlib.compress(data, 6)
        _atomic_write(path, packed)
        return len(packed)

    def get_chunk(self, digest: str, index: int, chunk_size: int) -> bytes:
        """A chunk's bytes, checked against its digest; a missing or altered one is a BackupCorrupt naming it."""
        path = self.chunk_path(digest)
        try:
            with open(path, "rb") as src:
                data = zlib.decompress(src.read())
        except FileNotFoundError:
            raise BackupCorrupt(f"backup chunk {index} ({path}) is missing") from None
        except zlib.error as exc:
            raise BackupCorrupt(f"backup chunk {index} ({path}) cannot be decompressed ({exc}): it was "
                                "altered or damaged") from None
        if len(data) != chunk_size or hashlib.sha256(data).hexdigest() != digest:
            raise BackupCorrupt(f"backup chunk {index} ({path}) does not match its checksum: it was altered "
                                "or damaged")
        return data

    def write_manifest(self, manifest: dict) -> None:
        _atomic_write(self.manifest_path(manifest["backup_id"]),
                      json.dumps(manifest, sort_keys=True).encode("utf-8"))

    def read_manifest(self, backup_id: str) -> dict:
        path = self.manifest_path(backup_id)
        try:
            with open(path, encoding="utf-8") as src:
                manifest = json.load(src)
        except FileNotFoundError:
            raise BackupCorrupt(f"backup manifest {path} is missing") from None
        except ValueError as exc:
            raise BackupCorrupt(f"backup manifest {path} is not valid JSON ({exc})") from None
        check_manifest(manifest, path)
        return manifest

    def manifest_ids(self) -> list[str]:
        try:
            names = os.listdir(os.path.join(self.location, "manifests"))
        except FileNotFoundError:
            return []
        return sorted(n[:-len(".json")] for n in names if n.endswith(".json"))

    def referenced(self, without: Iterable[str] = ()) -> set[str]:
        """The digests the manifests of this location use, except those of `without`."""
        skip = set(without)
        used: set[str] = set()
        for backup_id in self.manifest_ids():
            if backup_id not in skip:
                used.update(d for d in self.read_manifest(backup_id)["chunks"] if d)
        return used

    def delete(self, backup_ids: list[str]) -> int:
        """Remove backups' manifests and the chunks no other manifest here uses; returns chunks removed."""
        keep = self.referenced(without=backup_ids)
        mine: set[str] = set()
        for backup_id in backup_ids:
            if os.path.exists(self.manifest_path(backup_id)):
                mine.update(d for d in self.read_manifest(backup_id)["chunks"] if d)
        removed = 0
        # Chunks first, manifests last: a delete interrupted midway is finished by the next one.
        for digest in sorted(mine - keep):
            if os.path.exists(self.chunk_path(digest)):
                os.unlink(self.chunk_path(digest))
                removed += 1
        for backup_id in backup_ids:
            if os.path.exists(self.manifest_path(backup_id)):
                os.unlink(self.manifest_path(backup_id))
        return removed


def check_manifest(manifest: object, where: str) -> None:
    ok = (isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT
          and isinstance(manifest.get("chunk_size"), int) and manifest["chunk_size"] > 0
          and isinstance(manifest.get("size"), int) and isinstance(manifest.get("sha256"), str)
          and isinstance(manifest.get("chunks"), list)
          and len(manifest["chunks"]) == -(-manifest["size"] // manifest["chunk_size"])
          and all(d is None or isinstance(d, str) for d in manifest["chunks"]))
    if not ok:
        raise BackupCorrupt(f"backup manifest {where} is not one this collection wrote (format "
                            f"{MANIFEST_FORMAT}), or it was altered")


# reading an image into chunks, and back -------------------------------------
@dataclasses.dataclass
class Stored:
    manifest: dict
    changed_chunks: int  # chunks that differ from the parent's at the same place (all non-zero ones for a full)
    written_chunks: int  # chunks the location did not have
    written_bytes: int


def read_chunks(image: str, chunk_size: int) -> Iterator[bytes | None]:
    """The chunks of the raw image file `image`, None for each one that is all zeros; the holes of a sparse
    file are skipped without reading them (a mostly empty volume reads in a moment)."""
    size = os.path.getsize(image)
    zero = bytes(chunk_size)
    with open(image, "rb") as src:
        fd = src.fileno()
        offset = 0
        while offset < size:
            try:
                data_at = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole from here to the end
                data_at = size
            while offset + chunk_size <= data_at:
                yield None
                offset += chunk_size
            if offset >= size:
                break
            src.seek(offset)
            data = src.read(chunk_size).ljust(chunk_size, b"\0")  # the last chunk of an odd-sized image
            yield None if data == zero else data
            offset += chunk_size


def image_digest(digests: list[str | None], chunk_size: int) -> str:
    """The whole image's checksum: sha256 over its chunks' sha256 digests in order (a hash list: checking
    each chunk against its digest, then the list against this, checks every byte of the image)."""
    zero = hashlib.sha256(bytes(chunk_size)).hexdigest()
    whole = hashlib.sha256()
    for digest in digests:
        whole.update(bytes.fromhex(digest or zero))
    return whole.hexdigest()


def store_image(repo: Repository, image: str, backup_id: str, parent: dict | None,
                chunk_size: int = CHUNK_SIZE) -> Stored:
    """Read the raw image file `image` into chunks of `repo` and write its manifest (the last write)."""
    size = os.path.getsize(image)
    digests: list[str | None] = []
    old = (parent or {}).get("chunks", [])
    changed = written = written_bytes = 0
    for index, data in enumerate(read_chunks(image, chunk_size)):
        digest = None if data is None else hashlib.sha256(data).hexdigest()
        digests.append(digest)
        if digest != (old[index] if index < len(old) else None):
            changed += 1
        if data is not None:
            added = repo.put_chunk(digest, data)
            written += 1 if added else 0
            written_bytes += added
    manifest = {"format": MANIFEST_FORMAT, "backup_id": backup_id, "parent_id": (parent or {}).get("backup_id"),
                "chunk_size": chunk_size, "size": len(digests) * chunk_size, "image_size": size,
                "chunks": digests, "sha256": image_digest(digests, chunk_size)}
    repo.write_manifest(manifest)
    return Stored(manifest, changed, written, written_bytes)


def assemble(repo: Repository, manifest: dict, out: str) -> None:
    """Write the image `manifest` describes to the new file `out`, checking every chunk and the whole."""
    chunk_size = manifest["chunk_size"]
    if image_digest(manifest["chunks"], chunk_size) != manifest["sha256"]:
        raise BackupCorrupt(f"backup {manifest['backup_id']}: its manifest's chunk list does not match the "
                            "manifest's checksum of the whole image: the manifest was altered")
    with open(out, "wb") as dst:
        for index, digest in enumerate(manifest["chunks"]):
            if digest is None:
                dst.seek(chunk_size, os.SEEK_CUR)  # a hole
                continue
            dst.write(repo.get_chunk(digest, index, chunk_size))
        dst.truncate(manifest.get("image_size", manifest["size"]))


def _qemu_img(argv: list[str], what: str) -> None:
    try:
        proc = run(["qemu-img", *argv])
    except FileNotFoundError:
        raise DriverError(f"{what}: qemu-img is not installed on this host") from None
    if proc.returncode:
        raise DriverError(f"{what}: qemu-img failed: {proc.stderr.strip()}")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# chain rules (pure) ---------------------------------------------------------
def dependents(backups: list[Backup], backup_id: str) -> list[Backup]:
    """The backups that depend on `backup_id` (its incrementals, theirs...), the deepest first."""
    children: dict[str, list[Backup]] = {}
    for b in backups:
        if b.parent_id:
            children.setdefault(b.parent_id, []).append(b)
    found: list[Backup] = []

    def walk(parent: str) -> None:
        for child in sorted(children.get(parent, []), key=lambda b: (b.created_at, b.name)):
            walk(child.id)
            found.append(child)
    walk(backup_id)
    return found


def latest(backups: list[Backup], volume_id: str, location: str) -> Backup | None:
    """The newest available backup of the volume in the location: an incremental's parent."""
    mine = [b for b in backups if b.volume_id == volume_id and b.location == location and b.status == AVAILABLE]
    return max(mine, key=lambda b: (b.created_at, b.name), default=None)


def check_target(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("target: required, the directory to keep backups in (a local path or a mounted "
                               "share on the host where the backend's work runs)", "target")
    if not os.path.isabs(value):
        raise InvalidParameter(f"target: {value!r} is not an absolute path", "target")
    return os.path.normpath(value)


# steps (the table is BackupResource.ACTIONS) -----------------------------------
def _create_backup(resource: Resource, step: Step, driver: Driver) -> None:
    backup, volume = step.target, step.source
    repo = Repository(backup.location)
    repo.prepare()
    parent = repo.read_manifest(backup.parent_id) if backup.parent_id else None
    # A temporary snapshot, named by the backup's id, gives a consistent image to read.
    snapshot = Snapshot(id=backup.id, name=f"backup-{backup.id}", backend=backup.backend, volume_id=volume.id,
                        volume_size=volume.size, status=CREATING)
    snapshot.driver_data = driver.half_made_data(snapshot, volume)
    snap_data, volume_data = driver.create_snapshot(snapshot, volume)
    snapshot.driver_data = snap_data
    if volume_data != volume.driver_data:
        volume.driver_data = volume_data
        resource.records.put(volume)
    raw = repo.tmp_path(f"{backup.id}.raw")
    try:
        path, fmt = driver.image_of(snapshot)
        _qemu_img(["convert", "-f", fmt, "-O", "raw", path, raw], f"backup {backup.name!r}")
        stored = store_image(repo, raw, backup.id, parent)
    finally:
        _remove(raw)
        driver.delete_snapshot(snapshot)
    backup.size = volume.size * GiB
    backup.stored_bytes = stored.written_bytes
    backup.driver_data = {"chunk_size": CHUNK_SIZE, "chunks": len(stored.manifest["chunks"]),
                          "changed_chunks": stored.changed_chunks, "written_chunks": stored.written_chunks,
                          "sha256": stored.manifest["sha256"]}
    backup.status = AVAILABLE
    resource.stats = {"changed_chunks": stored.changed_chunks, "written_chunks": stored.written_chunks,
                      "chunks": len(stored.manifest["chunks"])}


def _undo_backup(driver: Driver, backup: Backup) -> None:
    repo = Repository(backup.location)
    if os.path.isdir(backup.location):
        repo.delete([backup.id])


def _delete_backup(resource: Resource, step: Step, driver: Driver) -> None:
    if os.path.isdir(step.target.location):
        Repository(step.target.location).delete([step.target.id])


def _verify_backup(resource: Resource, step: Step, driver: Driver) -> None:
    """Assemble the backup's image aside and verify it, before a restore step writes it into a volume."""
    backup = step.target
    repo = Repository(backup.location)
    repo.prepare()
    out = repo.tmp_path(f"restore-{backup.id}.raw")
    _remove(out)
    try:
        assemble(repo, repo.read_manifest(backup.id), out)
    except BaseException:
        _remove(out)
        raise
    resource.assembled = out


def _write_into(driver: Driver, volume: Volume, raw: str, what: str, new: bool = False) -> None:
    path, fmt = driver.image_of(volume)
    # -n: into the volume's existing image (its inode, its backing chain), zeros written where the backup has
    # none; a new volume reads zeros already, so its holes stay holes.
    _qemu_img(["convert", "-n", *(["--target-is-zero"] if new else []), "-f", "raw", "-O", fmt, raw, path], what)


def _restore_new(resource: Resource, step: Step, driver: Driver) -> None:
    volume, backup = step.target, step.source
    raw = resource.assembled  # verified by the step before
    try:
        volume.driver_data = driver.create_volume(volume)
        _write_into(driver, volume, raw, f"restore_to: writing backup {backup.name!r} into new volume "
                                         f"{volume.name!r} (the volume is deleted again)", new=True)
    finally:
        _remove(raw)
    volume.driver_data = dict(volume.driver_data, **{RESTORED_FROM: backup.id})
    volume.status = AVAILABLE


def _delete_volume(driver: Driver, volume: Volume) -> None:
    driver.delete_volume(volume)


def _restore_into(resource: Resource, step: Step, driver: Driver) -> None:
    volume, backup = step.target, step.source
    raw = resource.assembled  # verified by the step before: a bad chunk stopped there, the volume untouched
    try:
        _write_into(driver, volume, raw, f"restore_to: writing backup {backup.name!r} into volume "
                                         f"{volume.name!r} failed midway; its data is partly overwritten and "
                                         "it stays in status reverting until a restore succeeds")
    finally:
        _remove(raw)
    volume.driver_data = dict(volume.driver_data, **{RESTORED_FROM: backup.id})
    volume.status = AVAILABLE


class BackupResource(Resource):
    kind = BACKUP
    result_key = "backup"
    noop_on_controller = True
    # Nothing of a backup can be probed on the backend; a task with nothing to do is answered from the store.
    noop_checks_backend = False
    # Snapshots on drivers such as Cinder's read the volume's model (credentials included).
    needs_secrets = True
    ACTIONS: ClassVar[dict[str, Action]] = {
        "create_backup": Action(_create_backup, pending=CREATING, creates=True, undo=_undo_backup),
        "delete_backup": Action(_delete_backup, pending=DELETING, deletes=True, host_only=True),
        "verify_backup": Action(_verify_backup, host_only=True),
        "restore_new": Action(_restore_new, pending=CREATING, creates=True, undo=_delete_volume),
        "restore_into": Action(_restore_into, pending=REVERTING, failure_keeps_pending=True),
        "update": Action(lambda resource, step, driver: None, host_only=True),
    }
    stats: dict | None = None
    # The verified image a restore step writes (set by the verify step before it).
    assembled: str = ""

    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {BACKUP: [params.get("name")], VOLUME: [params.get("volume"), params.get("restore_to")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        # Every backup of the backend: chains and an incremental's parent are decided among them.
        found = store.find(backend, BACKUP)
        for ref in (params.get("volume"), params.get("restore_to")):
            found += by_ref(store, backend, VOLUME, ref)
        found += [v for b in found if b["kind"] == BACKUP and b["name"] == params.get("name")
                  for v in store.find(backend, VOLUME, id=b["volume_id"])]
        found += [c for v in found if v["kind"] == VOLUME for c in store.find(backend, CONNECTION, volume_id=v["id"])]
        return list({r["id"]: r for r in found}.values())

    @classmethod
    def host_records(cls, records: list[dict], params: dict, whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
        """Connections are read for whether the volume is in use, never for their credentials."""
        sent = [mask(r) if r["kind"] == CONNECTION else r for r in records]
        return sent, {r["id"] for r in records if r["kind"] == CONNECTION}

    def view(self, obj: object) -> dict:
        return public_view(obj) or {}

    def make_plan(self) -> Plan:
        params = self.params
        state = params.get("state", "present")
        if state not in BACKUP_STATES:
            raise InvalidParameter(f"state: {state!r} is not one of {', '.join(BACKUP_STATES)}", "state")
        name = check_name(params["name"]) if params.get("name") is not None else None
        backup_id = check_id(params.get("id"))
        if name is None and backup_id is None:
            raise InvalidParameter("name: one of name or id is required", "name")
        description = params.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidParameter("description: must be a string", "description")
        existing = self._existing(name, backup_id)
        self.restored: Volume | None = None
        if state == "absent":
            return self._plan_delete(existing)
        if state == "restored":
            return self._plan_restore(existing, name or backup_id)
        if existing is not None:
            return self._plan_keep(existing, name)
        if name is None:
            raise NotFound(f"id: no backup {backup_id} on backend {self.records.backend!r}; give a name, a volume "
                           "and a target to create one", "id")
        return self._plan_create(name, backup_id)

    def _plan_create(self, name: str, backup_id: str | None) -> Plan:
        volume_ref = self.params.get("volume")
        if not isinstance(volume_ref, str) or not volume_ref:
            raise InvalidParameter(f"volume: required to create backup {name!r}", "volume")
        location = check_target(self.params.get("target"))
        volume = self.records.lookup(VOLUME, volume_ref, "volume")
        refuse_held_open(self.driver, self.records, volume, "backup", "volume")
        if volume.status not in (AVAILABLE, IN_USE):
            raise Conflict(f"volume: {volume.name!r} is {volume.status}; it must be available or in-use to back "
                           "it up", "volume")
        parent = None
        if self.params.get("incremental"):
            parent = latest(self.records.all(BACKUP), volume.id, location)
            if parent is None:
                raise InvalidParameter(f"incremental: no available backup of volume {volume.name!r} in {location} "
                                       "to build on; take a full backup first (incremental: false)", "incremental")
        crash = any(is_live(c) for c in self.records.find(CONNECTION, volume_id=volume.id))
        backup = Backup(id=backup_id or self._next_id(), name=name, backend=self.records.backend,
                        volume_id=volume.id, volume_name=volume.name, volume_size=volume.size, location=location,
                        parent_id=parent.id if parent else None, status=AVAILABLE, crash_consistent=crash,
                        size=volume.size * GiB, description=self.params.get("description") or "")
        kind = f"incremental backup (on {parent.name!r})" if parent else "full backup"
        note = ", crash-consistent: the volume is connected" if crash else ""
        step = Step("create_backup", backup, volume,
                    message=f"create {kind} {name!r} of volume {volume.name!r} in {location}{note}")
        return Plan([step], None, self.view(backup))

    def _plan_keep(self, existing: Backup, name: str | None) -> Plan:
        if existing.status != AVAILABLE:
            raise Conflict(f"name: backup {existing.name!r} was left in status {existing.status} by an interrupted "
                           "task; delete it with state: absent, then back up again", "name")
        volume_ref = self.params.get("volume")
        if volume_ref is not None:
            volume = self.records.lookup(VOLUME, volume_ref, "volume", required=False)
            if volume is None or volume.id != existing.volume_id:
                raise Conflict(f"name: backup {existing.name!r} exists and is of volume {existing.volume_name!r} "
                               f"({existing.volume_id}), not {volume_ref!r}; backup names are unique per backend",
                               "name")
        if self.params.get("target") is not None and check_target(self.params["target"]) != existing.location:
            raise Conflict(f"target: backup {existing.name!r} exists in {existing.location}, not "
                           f"{self.params['target']}", "target")
        target = copy.deepcopy(existing)
        changes = []
        if name is not None and name != existing.name:
            target.name = name
            changes.append(f"rename to {name!r}")
        description = self.params.get("description")
        if description is not None and description != existing.description:
            target.description = description
            changes.append("set description")
        return self._finish(existing, target, [], changes)

    def _plan_delete(self, existing: Backup | None) -> Plan:
        if existing is None:
            return Plan([], None, None)
        chain = dependents(self.records.all(BACKUP), existing.id)
        if chain and not self.params.get("delete_dependents"):
            names = ", ".join(repr(b.name) for b in chain)
            raise Conflict(f"delete_dependents: incremental backup(s) {names} depend on backup {existing.name!r}; "
                           "delete them first, or set delete_dependents: true to delete them with it; nothing "
                           "was deleted", "delete_dependents")
        steps = [Step("delete_backup", b, message=f"delete backup {b.name!r} ({b.id}), which depends on "
                                                   f"{existing.name!r}") for b in chain]
        steps.append(Step("delete_backup", existing, message=f"delete backup {existing.name!r} ({existing.id})"))
        self.deleted = [self.view(b) for b in chain]
        return Plan(steps, self.view(existing), None)

    def _plan_restore(self, backup: Backup | None, ref: str) -> Plan:
        if backup is None:
            raise NotFound(f"name: no backup {ref!r} on backend {self.records.backend!r} to restore", "name")
        if backup.status != AVAILABLE:
            raise Conflict(f"name: backup {backup.name!r} is {backup.status}, not available; it cannot be restored",
                           "name")
        ref = self.params.get("restore_to")
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("restore_to: required with state: restored, the name of a new volume or of an "
                                   "existing one (with force: true)", "restore_to")
        volume = self.records.lookup(VOLUME, ref, "restore_to", required=False)
        if volume is None:
            name = check_name(ref, "restore_to")
            volume = Volume(id=self._next_id(), name=name, backend=self.records.backend, size=backup.volume_size,
                            status=AVAILABLE, description=f"restored from backup {backup.name}")
            self.restored = volume
            step = Step("restore_new", volume, backup,
                        message=f"restore backup {backup.name!r} to new volume {name!r} ({backup.volume_size} GiB)")
            return Plan([self._verify_step(backup), step], None, self.view(volume))
        self.restored = volume
        if not self.params.get("force"):
            if (volume.driver_data or {}).get(RESTORED_FROM) == backup.id:
                return Plan([], self.view(volume), self.view(volume))
            raise Conflict(f"force: volume {volume.name!r} exists; set force: true to overwrite its data with "
                           f"backup {backup.name!r}, or restore to a new volume name", "force")
        if volume.status != AVAILABLE or any(is_live(c) for c in self.records.find(CONNECTION, volume_id=volume.id)):
            raise Conflict(f"restore_to: volume {volume.name!r} is {volume.status} or connected to a host; detach it "
                           "before restoring a backup into it", "restore_to")
        if volume.size < backup.volume_size:
            raise Conflict(f"restore_to: volume {volume.name!r} has {volume.size} GiB, backup {backup.name!r} holds "
                           f"{backup.volume_size} GiB; extend the volume first", "restore_to")
        target = copy.deepcopy(volume)
        step = Step("restore_into", target, backup,
                    message=f"overwrite volume {volume.name!r} with backup {backup.name!r}")
        return Plan([self._verify_step(backup), step], self.view(volume), self.view(target))

    @staticmethod
    def _verify_step(backup: Backup) -> Step:
        return Step("verify_backup", copy.deepcopy(backup),
                    message=f"verify backup {backup.name!r}: every chunk's checksum and the whole image's")

    def result(self, plan: Plan) -> dict:
        if self.params.get("state") == "restored":
            backup = self._existing(*self._refs())
            volume = None
            if self.restored is not None:
                current = self.records.get(VOLUME, self.restored.id) if self.executed else None
                volume = self.view(current or self.restored)
            return {"changed": plan.changed, "actions": [s.message for s in plan.steps],
                    "backup": self.view(backup), "volume": volume,
                    "diff": {"before": plan.before or {}, "after": plan.after or {}}}
        result = super().result(plan)
        if self.stats is not None:
            result["chunks"] = self.stats
        if getattr(self, "deleted", None):
            result["deleted_dependents"] = self.deleted
        return result

    def _refs(self) -> tuple[str | None, str | None]:
        name = self.params.get("name")
        return name, check_id(self.params.get("id"))


class BackupInfo(Handler):
    """storage_backup_info: the backups of a backend, from the store (their volume may be gone)."""

    result_key = "backups"
    noop_on_controller = True

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        return store.find(backend, BACKUP) + by_ref(store, backend, VOLUME, params.get("volume"))

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, None]:
        params = task.params
        for key in ("volume", "name"):
            if params.get(key) is not None and (not isinstance(params[key], str) or not params[key]):
                raise InvalidParameter(f"{key}: must be a non-empty string", key)
        backup_id = check_id(params.get("id"))
        records = RecordSet(task.backend, task.records or [])
        backups = records.find(BACKUP, name=params.get("name"), id=backup_id)
        ref = params.get("volume")
        if ref is not None:
            volume = records.lookup(VOLUME, ref, "volume", required=False)
            # A deleted volume's backups are still found by its name or id.
            backups = [b for b in backups if b.volume_id == (volume.id if volume else ref.lower())
                       or (volume is None and b.volume_name == ref)]
        shown = [public_view(b) for b in sorted(backups, key=lambda b: (b.created_at, b.name, b.id))]
        return {"changed": False, cls.result_key: shown}, None
