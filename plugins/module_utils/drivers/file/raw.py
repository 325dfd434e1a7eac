# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The raw format of the file driver: sparse files; snapshots and clones are full point-in-time copies."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from ...commands import run
from ...errors import DriverError
from ...objects import Snapshot, Volume
from ...units import GiB
from .image import ImageFormat

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def reflink(src: str, dst: str) -> bool:
    with open(src, "rb") as source, open(dst, "wb") as target:
        try:
            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
            return True
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
                return False
            raise


REFLINK_PROBE = ".reflink-probe"
PROBE_LIFETIME = 60  # seconds: a probe older than that was left by a killed task (a live one lasts milliseconds)


def reflink_supported(directory: str) -> bool:
    """Whether files in `directory` can be copied by reflink (a probe file cloned, then both removed)."""
    probe = os.path.join(directory, f"{REFLINK_PROBE}-{os.getpid()}")  # concurrent tasks probe apart
    try:
        with open(probe, "wb") as handle:
            handle.write(b"x")
        return reflink(probe, probe + ".clone")
    finally:
        for path in (probe, probe + ".clone"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class RawFormat(ImageFormat):
    name = "raw"
    targets = ("local", "iscsi")
    snapshot_text = clone_text = "reflink or sparse copy"
    snapshot_delete_text = "allowed: snapshots are independent copies"
    volumes_share_snapshot_data = False
    revert_text = "in place: the snapshot copied over the image (reflink where the filesystem can)"

    # copies -------------------------------------------------------------
    def _copy(self, src: str, dst: str) -> str:
        """Point-in-time copy to a temp name, then rename: never a half file under dst."""
        tmp = dst + ".tmp"
        self.driver.unlink(tmp)
        method = None
        if self.driver.conf["reflink"] != "never" and reflink(src, tmp):
            method = "reflink"
        elif self.driver.conf["reflink"] == "always":
            raise DriverError(
                f"backend.reflink: 'always', but the filesystem of {self.driver.path} cannot reflink (XFS made with "
                "reflink=1 and btrfs can); use reflink 'auto' or 'never'", "backend.reflink")
        else:
            proc = run(["cp", "--sparse=always", "--reflink=never", src, tmp])
            if proc.returncode:
                self.driver.unlink(tmp)
                raise DriverError(f"file driver: copying {src} failed: {proc.stderr.strip()}")
            method = "copy"
        os.replace(tmp, dst)
        return method

    def _truncate(self, path: str, size_gib: int) -> None:
        try:
            if os.path.getsize(path) < size_gib * GiB:
                os.truncate(path, size_gib * GiB)
        except OSError as exc:
            raise DriverError(f"file driver: cannot size {path} to {size_gib} GiB: {exc.strerror}") from None

    # operations ---------------------------------------------------------
    def create(self, volume: Volume, path: str) -> dict:
        try:
            with open(path + ".tmp", "wb"):
                pass
            os.truncate(path + ".tmp", volume.size * GiB)
            os.replace(path + ".tmp", path)
        except OSError as exc:
            self.driver.unlink(path + ".tmp")
            raise DriverError(f"file driver: cannot create {path} of {volume.size} GiB: {exc.strerror}") from None
        return {}

    def _copy_of(self, source_path: str, volume: Volume, path: str) -> dict:
        method = self._copy(source_path, path)
        self._truncate(path, volume.size)
        return {"copy_method": method}

    def from_snapshot(self, volume: Volume, snapshot: Snapshot, path: str) -> dict:
        return self._copy_of(self.driver.snapshot_path(snapshot), volume, path)

    def clone(self, volume: Volume, source: Volume, path: str) -> dict:
        return self._copy_of(self.driver.volume_path(source), volume, path)

    def extend(self, volume: Volume, path: str, new_size: int) -> None:
        self._truncate(path, new_size)

    def delete(self, volume: Volume, path: str) -> None:
        self.driver.unlink(path)
        self.driver.unlink(path + ".tmp")

    def snapshot(self, snapshot: Snapshot, volume: Volume) -> dict:
        return {"copy_method": self._copy(self.driver.volume_path(volume), self.driver.snapshot_path(snapshot))}

    def delete_snapshot(self, snapshot: Snapshot, path: str) -> None:
        self.driver.unlink(path)

    def revert(self, volume: Volume, snapshot: Snapshot, path: str) -> None:
        # Into the same inode (not a temp file renamed over it): a loop device or tgt serving the file
        # sees the reverted data. A crash midway leaves a half copy; the record says 'reverting' until
        # a re-run copies again.
        src = self.driver.snapshot_path(snapshot)
        mode = self.driver.conf["reflink"]
        if mode == "always":
            args = ["--reflink=always"]
        elif mode == "never":
            args = ["--reflink=never", "--sparse=always"]
        else:
            args = ["--reflink=auto", "--sparse=always"]
        proc = run(["cp", *args, src, path])
        if proc.returncode:
            if mode == "always":
                raise DriverError(f"backend.reflink: 'always', but reverting {path} by reflink failed: "
                                  f"{proc.stderr.strip()}", "backend.reflink")
            raise DriverError(f"file driver: copying {src} over {path} failed: {proc.stderr.strip()}")
        self._truncate(path, volume.size)
