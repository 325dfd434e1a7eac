# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a list of rbd driver operations against a real cluster; print the outcome as JSON.

Used by tests/unit/plugins/module_utils/drivers/test_rbd_cluster.py: the Ceph bindings
load only in Debian's python3.11, so those tests (Python >= 3.12) run this script with
.venv-rbd's Python, the collection importable through PYTHONPATH.

stdin:  {"backend": {rbd options}, "ops": [[op, label, ...], ...]}
stdout: {"ids": {label: id}, "results": [{"ok": value} | {"error": class, "msg": ..., "option": ...}]}

ops (labels name volumes and snapshots; ids are made here):
  ["volume", v, size, qos?]       ["snapshot", s, v]           ["from_snapshot", v, s, size?]
  ["clone", v, source, size?, qos?]  ["delete_volume", v]      ["delete_snapshot", s]
  ["change_qos", v, qos]          (qos: the volume's qos_specs, as storage_volume's qos)
  ["extend", v, size]             ["revert", v, s]             ["connect", v]
  ["write", v, offset, byte]      ["read", v, offset, length]  (the distinct byte values read)
  ["depth", v]                    ["exists", v]                ["stats"] ["ids"] ["check"]
  ["image_of", v or s]            (the qemu filename and format backups read or write)
  ["drop_image", v]               (removes v's image behind the driver's back)
  ["purge", [id, ...]]            (test clean-up: removes every image named with one of the ids)
"""

from __future__ import annotations

import json
import sys
import uuid

from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Connection, Snapshot, Volume


class Runner:
    def __init__(self, driver) -> None:
        self.driver = driver
        self.ids: dict[str, str] = {}
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}

    def _new_volume(self, label: str, size: int, **sources: str) -> Volume:
        self.ids[label] = str(uuid.uuid4())
        self.volumes[label] = Volume(id=self.ids[label], name=label, backend="t", size=size, **sources)
        return self.volumes[label]

    def _image(self, label: str, read_only: bool = False):
        return self.driver._image(self.driver.volume_image(self.volumes[label].id), read_only=read_only)

    @staticmethod
    def _spec(qos: dict | None) -> dict | None:
        return {"name": None, "extra_specs": {}, "qos_specs": qos} if qos is not None else None

    def op_volume(self, label: str, size: int, qos: dict | None = None) -> None:
        volume = self._new_volume(label, size)
        volume.volume_type = self._spec(qos)
        volume.driver_data = self.driver.create_volume(volume)

    def op_change_qos(self, label: str, qos: dict) -> None:
        volume = self.volumes[label]
        volume.volume_type = self._spec(qos)
        volume.driver_data = self.driver.change_qos(volume)

    def op_snapshot(self, label: str, volume_label: str) -> None:
        volume = self.volumes[volume_label]
        self.ids[label] = str(uuid.uuid4())
        snap = Snapshot(id=self.ids[label], name=label, backend="t", volume_id=volume.id, volume_size=volume.size)
        self.snapshots[label] = snap
        snap.driver_data = self.driver.create_snapshot(snap, volume)[0]

    def op_from_snapshot(self, label: str, snap_label: str, size: int | None = None) -> None:
        snap = self.snapshots[snap_label]
        volume = self._new_volume(label, size or snap.volume_size, source_snapshot_id=snap.id)
        volume.driver_data = self.driver.create_volume_from_snapshot(volume, snap)

    def op_clone(self, label: str, source_label: str, size: int | None = None, qos: dict | None = None) -> None:
        source = self.volumes[source_label]
        volume = self._new_volume(label, size or source.size, source_volume_id=source.id)
        volume.volume_type = self._spec(qos)
        volume.driver_data = self.driver.create_cloned_volume(volume, source)[0]

    def op_cinder_clone(self, label: str, source_label: str) -> None:
        """Clone a volume as Cinder's RBD driver does (a volume imported from cinderlib): through a protected
        snapshot of the source named after the clone, `volume-<clone id>.clone_snap`."""
        source = self.volumes[source_label]
        volume = self._new_volume(label, source.size, source_volume_id=source.id)
        ioctx = self.driver._connect()[1]
        snap = self.driver.volume_image(volume.id) + ".clone_snap"
        with self._image(source_label) as image:
            image.create_snap(snap)
            image.protect_snap(snap)
        self.driver._rbd.RBD().clone(ioctx, self.driver.volume_image(source.id), snap, ioctx,
                                     self.driver.volume_image(volume.id))

    def op_leftovers(self) -> list[str]:
        return self.driver.list_leftovers()

    def op_delete_volume(self, label: str) -> None:
        self.driver.delete_volume(self.volumes[label])

    def op_delete_snapshot(self, label: str) -> None:
        self.driver.delete_snapshot(self.snapshots[label])

    def op_extend(self, label: str, size: int) -> None:
        volume = self.volumes[label]
        volume.driver_data = self.driver.extend_volume(volume, size)
        volume.size = size

    def op_revert(self, label: str, snap_label: str) -> None:
        self.driver.revert_to_snapshot(self.volumes[label], self.snapshots[snap_label])

    def op_connect(self, label: str) -> dict:
        volume = self.volumes[label]
        connection = Connection(id=str(uuid.uuid4()), backend="t", volume_id=volume.id, host="h")
        info = self.driver.initialize_connection(volume, connection)
        self.driver.terminate_connection(volume, connection)
        return info

    def op_write(self, label: str, offset: int, byte: int) -> None:
        with self._image(label) as image:
            image.write(bytes([byte]) * 65536, offset)

    def op_read(self, label: str, offset: int, length: int) -> list[int]:
        with self._image(label, read_only=True) as image:
            return sorted(set(image.read(offset, length)))

    def op_drop_image(self, label: str) -> None:
        """Remove a volume's image behind the driver's back, as a crash before it was made would."""
        ioctx = self.driver._connect()[1]
        self.driver._rbd.RBD().remove(ioctx, self.driver.volume_image(self.volumes[label].id))

    def op_purge(self, ids: list) -> int:
        """Test clean-up: remove every image (and its snapshots) whose name holds one of ids."""
        driver, rbd = self.driver, self.driver._bindings()[1]
        ioctx = driver._connect()[1]
        removed = -1
        while removed:
            removed = 0
            for name in [n for n in driver._names() if any(i in n for i in ids)]:
                try:
                    with driver._image(name) as image:
                        for snap in driver._snap_names(image):
                            if image.is_protected_snap(snap):
                                image.unprotect_snap(snap)
                            image.remove_snap(snap)
                    rbd.RBD().remove(ioctx, name)
                    removed += 1
                except (rbd.ImageBusy, rbd.ImageHasSnapshots, rbd.InvalidArgument):
                    continue  # a clone of it is still there: next round
        return len([n for n in driver._names() if any(i in n for i in ids)])

    def op_depth(self, label: str) -> int:
        return self.driver._depth(self.driver.volume_image(self.volumes[label].id))

    def op_image_of(self, label: str) -> list:
        return list(self.driver.image_of(self.snapshots.get(label) or self.volumes[label]))

    def op_exists(self, label: str) -> bool:
        return self.driver.volume_exists(self.volumes[label])

    def op_stats(self) -> dict:
        return self.driver.get_stats()

    def op_ids(self) -> list[str]:
        return self.driver.list_volume_ids()

    def op_check(self) -> None:
        self.driver.check_setup()


def _error(exc: BlockstoreError) -> dict:
    return {"error": type(exc).__name__, "msg": str(exc), "option": exc.option}


def main() -> None:
    request = json.load(sys.stdin)
    try:
        runner = Runner(build_driver({"name": "t", "driver": "rbd", **request["backend"]}))
    except BlockstoreError as exc:
        print(json.dumps({"ids": {}, "results": [_error(exc)]}))
        return
    results = []
    for op, *args in request["ops"]:
        try:
            results.append({"ok": getattr(runner, "op_" + op)(*args)})
        except BlockstoreError as exc:
            results.append(_error(exc))
    print(json.dumps({"ids": runner.ids, "results": results}))


if __name__ == "__main__":
    main()
