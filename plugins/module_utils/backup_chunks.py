# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup format (backups.py's storage): a directory of compressed, content-named chunks and manifests.

Layout of a backup location (a directory on the host where the backend's work runs):

    chunks/<first two hex digits>/<sha256>   one fixed-size piece of an image, zlib-compressed, named by the
                                             sha256 of its uncompressed bytes (so equal pieces are stored once)
    manifests/<backup id>.json               per backup: the chunk size, the image size, each chunk's digest
                                             (null: all zeros, not stored) and the checksum of the whole image
    tmp/                                     images being read or assembled (removed when the task ends)
    .lock                                    flock()ed: shared while a backup is stored, exclusive to delete

An incremental backup names its parent; it stores only the chunks the location does not hold, which for a
volume whose blocks changed since the parent is the block-level difference. Plain Python and files only:
the chain rules here are pure functions of the backup records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import zlib
from typing import Iterable, Iterator

from .commands import run
from .errors import DriverError, InvalidParameter
from .objects import AVAILABLE, Backup

CHUNK_SIZE = 4 * 1024 * 1024
MANIFEST_FORMAT = 1


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

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Tasks on backups of different volumes share a location: a delete (exclusive) waits for the backups
        being stored (shared), which may reuse a chunk it would remove before their manifests name it."""
        fd = os.open(os.path.join(self.location, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

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
        with self.locked(exclusive=True):
            return self._delete(backup_ids)

    def _delete(self, backup_ids: list[str]) -> int:
        keep = self.referenced(without=backup_ids)
        removed = 0
        # Chunks first, manifests last: a delete interrupted midway is finished by the next one. Every chunk no
        # other manifest names goes, also those of a task killed before its manifest (none is being stored now).
        for top, _dirs, files in os.walk(os.path.join(self.location, "chunks")):
            for name in sorted(files):
                if name not in keep:
                    os.unlink(os.path.join(top, name))
                    removed += 0 if name.endswith(".tmp") else 1
        for backup_id in backup_ids:
            if os.path.exists(self.manifest_path(backup_id)):
                os.unlink(self.manifest_path(backup_id))
        return removed


def _well_formed(manifest: object) -> bool:
    """The shape this collection writes: its format, sizes, checksum and one entry per chunk."""
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return False
    chunk_size, size, chunks = manifest.get("chunk_size"), manifest.get("size"), manifest.get("chunks")
    if not isinstance(chunk_size, int) or chunk_size <= 0 or not isinstance(size, int):
        return False
    if not isinstance(manifest.get("sha256"), str) or not isinstance(chunks, list):
        return False
    return len(chunks) == -(-size // chunk_size) and all(d is None or isinstance(d, str) for d in chunks)


def check_manifest(manifest: object, where: str) -> None:
    if not _well_formed(manifest):
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
    with repo.locked(exclusive=False):  # until the manifest names the chunks it found here
        for index, data in enumerate(read_chunks(image, chunk_size)):
            digest = None if data is None else hashlib.sha256(data).hexdigest()
            digests.append(digest)
            if digest != (old[index] if index < len(old) else None):
                changed += 1
            if data is not None:
                added = repo.put_chunk(digest, data)
                written += 1 if added else 0
                written_bytes += added
        manifest = {"format": MANIFEST_FORMAT, "backup_id": backup_id,
                    "parent_id": (parent or {}).get("backup_id"), "chunk_size": chunk_size,
                    "size": len(digests) * chunk_size, "image_size": size, "chunks": digests,
                    "sha256": image_digest(digests, chunk_size)}
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


def qemu_img(argv: list[str], what: str) -> None:
    try:
        proc = run(["qemu-img", *argv])
    except FileNotFoundError:
        raise DriverError(f"{what}: qemu-img is not installed on this host") from None
    if proc.returncode:
        raise DriverError(f"{what}: qemu-img failed: {proc.stderr.strip()}")


def remove(path: str) -> None:
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
