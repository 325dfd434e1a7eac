# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image formats of the file driver: what each one is (data) and the few operations that differ.

A format is a class described by its attributes (name, the exports that can serve it,
whether a copy freezes the image, the capability texts shown by storage_backend_info),
plus the operations the two formats do differently. FileDriver picks one per volume from
the record's `format` and keeps everything the formats share (paths, exports, listing).
"""

from __future__ import annotations

from typing import ClassVar

from ...objects import Snapshot, Volume
from ..base import Driver


class ImageFormat:
    name: ClassVar[str] = ""
    # Export targets that can serve this format's files (tgt serves a file's bytes as they are).
    targets: ClassVar[tuple[str, ...]] = ("local",)
    # A snapshot or clone turns the current image into a read-only backing file.
    copy_freezes_image: ClassVar[bool] = False
    # Volumes made from a snapshot may use its file as their backing file (Driver.volumes_share_snapshot_data).
    volumes_share_snapshot_data: ClassVar[bool] = True
    # Capability texts (storage_backend_info, docs/drivers/file.md).
    snapshot_text: ClassVar[str] = ""
    clone_text: ClassVar[str] = ""
    snapshot_delete_text: ClassVar[str] = ""
    revert_text: ClassVar[str] = ""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver  # the FileDriver: its paths, options and file helpers

    def check_setup(self) -> None:
        """Tools this format needs on the host."""

    def create(self, volume: Volume, path: str) -> dict:
        raise NotImplementedError

    def from_snapshot(self, volume: Volume, snapshot: Snapshot, path: str) -> dict:
        raise NotImplementedError

    def clone(self, volume: Volume, source: Volume, path: str) -> dict:
        raise NotImplementedError

    def extend(self, volume: Volume, path: str, new_size: int) -> None:
        raise NotImplementedError

    def delete(self, volume: Volume, path: str) -> None:
        raise NotImplementedError

    def snapshot(self, snapshot: Snapshot, volume: Volume) -> dict:
        raise NotImplementedError

    def delete_snapshot(self, snapshot: Snapshot, path: str) -> None:
        raise NotImplementedError

    def revert(self, volume: Volume, snapshot: Snapshot, path: str) -> None:
        """Make the image at `path` hold the snapshot's data, at the volume's size; the snapshot is only read."""
        raise NotImplementedError


def file_image_of(driver: Driver, obj: Volume | Snapshot) -> tuple[str, str]:
    """The file driver's Driver.image_of: the image file of a volume or snapshot, and its qemu-img format."""
    path = driver.snapshot_path(obj) if isinstance(obj, Snapshot) else driver.volume_path(obj)
    return path, driver.format_of(obj).name
