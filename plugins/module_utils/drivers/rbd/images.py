# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rbd driver's image chains: names, clones of protected snapshots, flattening, hiding, collecting.

A part of RbdDriver (drivers/rbd/__init__.py); its module docstring describes the naming
and why parents and children can be deleted in any order.
"""

from __future__ import annotations

import time
from typing import Any

from ...errors import DriverError
from ...objects import Snapshot
from ...units import GiB

HIDDEN_SUFFIX = ".deleted"
USER_SNAP_PREFIX = "snapshot-"
CLONE_BASE_PREFIX = "clone-base-"
# Cinder's RBD driver clones a volume through a protected snapshot of the source named
# `volume-<clone id>.clone_snap`, and removes it with the clone: on volumes imported from
# cinderlib such snapshots are private clone bases as our own `clone-base-*` ones are.
CINDER_CLONE_SNAP_SUFFIX = ".clone_snap"
# A client that dies with an image open (a module killed mid-task) keeps its watch on the image
# until the OSDs time it out (osd_client_watch_timeout, 30 s): until then the image is "busy" and
# cannot be removed. Seconds to keep trying, and between tries.
BUSY_TIMEOUT = 45
BUSY_RETRY_INTERVAL = 2


def is_clone_base(snap: str) -> bool:
    """A private snapshot that exists only for clones (ours, or Cinder's from an imported volume)."""
    cinders = snap.startswith("volume-") and snap.endswith(CINDER_CLONE_SNAP_SUFFIX)
    return snap.startswith(CLONE_BASE_PREFIX) or cinders


class ImageChains:
    """RbdDriver's work on images and snapshots below the driver interface."""

    @staticmethod
    def volume_image(volume_id: str) -> str:
        return f"volume-{volume_id}"

    @staticmethod
    def snapshot_name(snapshot: Snapshot) -> str:
        return f"{USER_SNAP_PREFIX}{snapshot.id}"

    def _image(self, name: str, snapshot: str | None = None, read_only: bool = False) -> Any:
        ioctx = self._connect()[1]
        return self._rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)

    def _names(self) -> list[str]:
        ioctx = self._connect()[1]
        return self._rbd.RBD().list(ioctx)

    def _exists(self, name: str) -> bool:
        try:
            with self._image(name, read_only=True):
                return True
        except self._rbd.ImageNotFound:
            return False

    def _find_volume_image(self, volume_id: str) -> str | None:
        """The image of a volume, under its own name or hidden."""
        for name in (self.volume_image(volume_id), self.volume_image(volume_id) + HIDDEN_SUFFIX):
            if self._exists(name):
                return name
        return None

    def _source_image(self, volume_id: str) -> str:
        name = self._find_volume_image(volume_id)
        if name is None:
            raise DriverError(f"rbd driver: the image {self.pool}/{self.volume_image(volume_id)} is missing from "
                              "the pool")
        return name

    @staticmethod
    def _snap_names(image: Any) -> list[str]:
        return [s["name"] for s in image.list_snaps()]

    def _children(self, image: Any, snap: str) -> list[tuple[str, str]]:
        """(pool, image) of the clones of image@snap."""
        image.set_snap(snap)
        try:
            return [(c["pool"], c["image"]) for c in image.list_children2()]
        finally:
            image.set_snap(None)

    def _parent(self, image: Any) -> tuple[str, str, str] | None:
        try:
            pool, name, snap = image.parent_info()
        except self._rbd.ImageNotFound:
            return None
        return pool, name, snap

    def _depth(self, name: str) -> int:
        """How many parents stand behind an image."""
        depth = 0
        parent = (self.pool, name, "")
        while parent is not None and parent[0] == self.pool:
            with self._image(parent[1], read_only=True) as image:
                parent = self._parent(image)
            if parent is not None:
                depth += 1
        return depth

    def _resize_to(self, name: str, size_gib: int) -> None:
        with self._image(name) as image:
            if image.size() < size_gib * GiB:
                image.resize(size_gib * GiB)

    def _protect(self, image: Any, snap: str) -> None:
        if not image.is_protected_snap(snap):
            image.protect_snap(snap)

    def _flatten(self, pool: str, name: str) -> None:
        cluster, ioctx = self._connect()
        child_ioctx = ioctx if pool == self.pool else cluster.open_ioctx(pool)
        try:
            with self._rbd.Image(child_ioctx, name) as image:
                image.flatten()
        finally:
            if child_ioctx is not ioctx:
                child_ioctx.close()

    def _remove_leftover(self, name: str) -> None:
        """A volume image left by an interrupted create holds nothing a user wrote."""
        if self._exists(name):
            self._remove_or_hide(name)

    def _remove_or_hide(self, name: str) -> None:
        """Remove an image with its unused snapshots; hide it if clones still use one."""
        with self._image(name) as image:
            parent = self._parent(image)
            in_use = False
            for snap in self._snap_names(image):
                if self._children(image, snap):
                    in_use = True
                    continue
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)
        ioctx = self._connect()[1]
        if in_use:
            if not name.endswith(HIDDEN_SUFFIX):
                self._rbd.RBD().rename(ioctx, name, name + HIDDEN_SUFFIX)
            return
        try:
            self._remove_image(ioctx, name)
        except self._rbd.ImageNotFound:
            return  # a concurrent task collected it first
        if parent is not None:
            self._collect(*parent)

    def _remove_image(self, ioctx: Any, name: str) -> None:
        """Remove an image, waiting out the watch a killed client left on it (see BUSY_TIMEOUT)."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._rbd.RBD().remove(ioctx, name)
                return
            except self._rbd.ImageBusy:
                if time.monotonic() > deadline:
                    raise DriverError(f"rbd driver: the image {self.pool}/{name} is still open by a client after "
                                      f"{BUSY_TIMEOUT} s (an attachment, or a process that has it open); detach it "
                                      "and try again") from None
                time.sleep(BUSY_RETRY_INTERVAL)

    def _collect(self, pool: str, name: str, snap: str) -> None:
        """After a clone of name@snap went away or was flattened: drop what nobody needs.

        A private clone-base snapshot goes with its last clone; a hidden image goes
        with its last snapshot, and then its own parent is looked at. A user's
        snapshot stays as it is (still protected: unprotecting it here could race
        a task that is about to clone it); deleting it unprotects it.
        """
        if pool != self.pool:
            return  # never touch another pool's images
        hidden = name.endswith(HIDDEN_SUFFIX)
        if not (hidden or is_clone_base(snap)):
            return
        try:
            with self._image(name) as image:
                if snap not in self._snap_names(image) or self._children(image, snap):
                    return
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)
                if not hidden or self._snap_names(image):
                    return
        except self._rbd.ImageNotFound:
            return  # a concurrent task collected it first
        self._remove_or_hide(name)

    def _driver_data(self, name: str) -> dict:
        return {"pool": self.pool, "image": name}

    def _copy(self, source: str, snap: str, dest: str) -> None:
        """A full, independent copy of source@snap (rbd_max_clone_depth 0)."""
        ioctx = self._connect()[1]
        with self._image(source, snapshot=snap, read_only=True) as image:
            image.copy(ioctx, dest)

    def _clone(self, source: str, snap: str, dest: str, flatten: bool) -> None:
        ioctx = self._connect()[1]
        with self._image(source) as image:
            self._protect(image, snap)
        self._rbd.RBD().clone(ioctx, source, snap, ioctx, dest)
        if flatten or self._depth(dest) > self.conf["rbd_max_clone_depth"]:
            self._flatten(self.pool, dest)
            self._collect(self.pool, source, snap)

    def _delete_snapshot(self, snap: str, volume_id: str) -> None:
        name = self._find_volume_image(volume_id)
        if name is None:
            return
        with self._image(name) as image:
            if snap not in self._snap_names(image):
                return
            children = self._children(image, snap)
        # Volumes made from the snapshot must outlive it: make them independent.
        for pool, child in children:
            self._flatten(pool, child)
        with self._image(name) as image:
            if image.is_protected_snap(snap):
                image.unprotect_snap(snap)
            image.remove_snap(snap)
        if name.endswith(HIDDEN_SUFFIX):
            self._remove_or_hide(name)

    def _garbage(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(hidden images, (image, clone-base snapshot)) that no clone uses any more: what an
        interrupted delete or clone leaves behind."""
        images, snaps = [], []
        for name in self._names():
            if not name.startswith("volume-"):
                continue
            try:
                with self._image(name) as image:
                    unused = [s for s in self._snap_names(image) if not self._children(image, s)]
                    used = len(self._snap_names(image)) - len(unused)
            except self._rbd.ImageNotFound:
                continue
            if name.endswith(HIDDEN_SUFFIX) and not used:
                images.append(name)
            snaps += [(name, s) for s in unused if is_clone_base(s)]
        return images, snaps

    def _collect_garbage(self) -> None:
        """After an interrupted delete: collect what it did not get to."""
        images, snaps = self._garbage()
        for name, snap in snaps:
            self._collect(self.pool, name, snap)
        for name in images:
            try:
                self._remove_or_hide(name)
            except self._rbd.ImageNotFound:
                continue  # a concurrent task collected it first
