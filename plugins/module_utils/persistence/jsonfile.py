# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""State in one JSON file on the controller.

Writes: under a short lock on `<path>.lock` (never renamed), re-read the file,
merge this task's changes, write a temp file (`.<name>.XXXXXXXX.blockstore-tmp`,
removed by the next writer if a killed one left it; the pattern matches no other
store's temp file), fsync, rename over, fsync the directory.
Readers need no lock: rename makes every version whole. A file that does not
parse is never overwritten. Mode 0600: records may carry secrets; the owner and
group of an existing file are kept.

The path may be a symlink: the store is its target (locks, temp file and rename
happen there), so the link stays and the real file gets the records. Anything
but a regular file (a device such as /dev/null, a directory, a FIFO) is refused.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import json
import os
import re
import stat
import tempfile
from typing import Iterable, Iterator

from .. import serialization
from ..errors import StateStoreError
from .base import FileLocks, Store, matches, refuse_id_clash

TEMP_SUFFIX = ".blockstore-tmp"


def _link_target(path: str) -> str:
    """The file the store lives in: `path`, or the target of the symlink `path` (the link stays a link)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def _refuse_unless_regular(path: str) -> None:
    """Only a regular file (or nothing yet) is a state file: a rename over /dev/null would replace the device."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing, or a parent is not a directory: the read or write says so
    if stat.S_ISREG(mode):
        return
    what = ("a directory" if stat.S_ISDIR(mode) else "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file")
    raise StateStoreError(f"persistence.path: {path} is {what}, not a state file; give the path of a regular "
                          "file, or of one that does not exist yet", "persistence.path")


class JsonFileStore(Store):
    def __init__(self, path: str) -> None:
        self.path = _link_target(os.path.abspath(os.path.expanduser(path)))
        self._resource_locks = FileLocks(self.path + ".locks")
        self._file_lock = FileLocks(os.path.dirname(self.path))
        # The last text read and its records: one task finds several times (its select runs
        # before and under its locks), and parsing is most of a read's cost (bench/store_scale.py).
        self._parsed_text: str | None = None
        self._parsed: dict[str, dict] = {}

    @property
    def identity(self) -> str:
        return f"file {self.path}"

    def _read_text(self) -> str:
        _refuse_unless_regular(self.path)
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StateStoreError(f"persistence.path: cannot read state file {self.path}: {reason}") from None

    def _parse(self, text: str) -> dict[str, dict]:
        return serialization.loads(text, where=f"persistence.path: state file {self.path}")

    def _read(self) -> dict[str, dict]:
        """The file's records as they are now, parsed again only when the text changed.

        Callers must not change what they get: find() hands out copies, apply() a new mapping.
        """
        text = self._read_text()
        if text != self._parsed_text:
            self._parsed = self._parse(text)
            self._parsed_text = text
        return self._parsed

    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        return [copy.deepcopy(r) for r in self._read().values() if matches(r, backend, kind, filters)]

    def all_records(self) -> list[dict]:
        return list(self._parse(self._read_text()).values())

    def by_id(self, object_id: str) -> dict | None:
        record = self._read().get(object_id)
        return copy.deepcopy(record) if record is not None else None

    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        upserts, deletes = list(upserts), list(deletes)
        if not upserts and not deletes:
            return
        # A record the file's reader would refuse must not get in: it would make the whole file unreadable.
        for record in upserts:
            serialization.check_record(record, "apply: record")
        _refuse_unless_regular(self.path)  # before the lock file appears beside it
        with self._file_lock.hold(os.path.basename(self.path) + ".lock"):
            records = dict(self._read())
            for record in upserts:
                refuse_id_clash(records.get(record["id"]), record)
            for record in upserts:
                # A copy as the file will give it back: the caller keeps its own objects.
                records[record["id"]] = json.loads(json.dumps(record))
            for gone in deletes:
                records.pop(gone["id"], None)
            text = serialization.dumps(records)
            self._parsed_text = None
            self._write(text)
            self._parsed_text, self._parsed = text, records

    def _write(self, text: str) -> None:
        _refuse_unless_regular(self.path)
        directory = os.path.dirname(self.path)
        prefix = f".{os.path.basename(self.path)}."
        # Writers hold the file lock while their temp file exists: one found now belongs to a
        # writer that was killed before its rename. The state file itself was never touched.
        # Only this store's: `.<name>.` + mkstemp's 8 characters + the suffix, so that the temp
        # file of `state.json-b` (or of `state.json.x`) is never taken for one of `state.json`'s.
        mine = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"\Z")
        pattern = os.path.join(glob.escape(directory), glob.escape(prefix) + "*" + TEMP_SUFFIX)
        for leftover in glob.glob(pattern):
            if mine.match(os.path.basename(leftover)):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        try:
            current = os.stat(self.path)
        except OSError:
            current = None
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=directory)  # created 0600
        except OSError as exc:
            raise StateStoreError(f"persistence.path: cannot write in {directory}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                if current is not None and (current.st_uid, current.st_gid) != (os.geteuid(), os.getegid()):
                    # Another user's (or group's) state file stays theirs: rewritten as ours, they lose it.
                    try:
                        os.fchown(handle.fileno(), current.st_uid, current.st_gid)
                    except OSError as exc:
                        raise StateStoreError(
                            f"persistence.path: state file {self.path} belongs to uid {current.st_uid} gid "
                            f"{current.st_gid}; it cannot be rewritten keeping its owner ({exc.strerror}); run "
                            "as that user or give another path") from None
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if not isinstance(exc, OSError):
                raise
            raise StateStoreError(f"persistence.path: cannot write state file {self.path}: {exc.strerror}") from None

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        keys = list(keys)
        if keys:
            # The lock directory is inside the state directory: make that one private first, or makedirs
            # would create it with the umask's mode. FileLocks names what is wrong if this fails.
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with self._resource_locks.locked(keys):
            yield
