# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver operations beside the usual lifecycle (volume_exists, snapshot_exists, revert_to_snapshot):
what each driver answers, so that their callers can rely on it. The rbd driver's are run
against the test Ceph in test_rbd_driver_cluster.py."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Snapshot, Volume

VOLUME = Volume(id="11111111-1111-4111-8111-111111111111", name="v", backend="lab", size=1, status="creating")
SNAPSHOT = Snapshot(id="22222222-2222-4222-8222-222222222222", name="s", backend="lab", volume_id=VOLUME.id,
                    volume_size=1, status="creating")


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_file_driver_says_what_exists(tmp_path, fmt):
    if fmt == "qcow2" and not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "format": fmt})
    driver.check_setup()
    assert not driver.volume_exists(VOLUME) and not driver.snapshot_exists(SNAPSHOT)
    VOLUME.driver_data = driver.create_volume(VOLUME)
    SNAPSHOT.driver_data = driver.create_snapshot(SNAPSHOT, VOLUME)[0]
    assert driver.volume_exists(VOLUME) and driver.snapshot_exists(SNAPSHOT)
    driver.delete_snapshot(SNAPSHOT)
    driver.delete_volume(VOLUME)
    assert not driver.volume_exists(VOLUME) and not driver.snapshot_exists(SNAPSHOT)


def _qemu_io(path: str, fmt: str, *ops: str) -> None:
    args = [a for op in ops for a in ("-c", op)]
    proc = subprocess.run(["qemu-io", "-f", fmt, *args, path], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Pattern verification failed" not in proc.stdout + proc.stderr, proc


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_file_driver_reverts_in_place(tmp_path, fmt):
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "format": fmt})
    driver.check_setup()
    volume = Volume(id=VOLUME.id, name="v", backend="lab", size=1, status="available")
    first = Snapshot(id=SNAPSHOT.id, name="s1", backend="lab", volume_id=volume.id, volume_size=1)
    second = Snapshot(id="33333333-3333-4333-8333-333333333333", name="s2", backend="lab", volume_id=volume.id,
                      volume_size=1)
    path = driver.volume_path(volume)
    volume.driver_data = driver.create_volume(volume)
    _qemu_io(path, fmt, "write -P 0x11 0 1M")
    first.driver_data, volume.driver_data = driver.create_snapshot(first, volume)
    _qemu_io(path, fmt, "write -P 0x22 0 1M", "write -P 0x33 1M 1M")
    second.driver_data, volume.driver_data = driver.create_snapshot(second, volume)
    _qemu_io(path, fmt, "write -P 0x44 0 1M")
    inode = os.stat(path).st_ino
    volume.size = 2  # grown since the snapshots: a revert keeps the size, zeros past the snapshot's

    driver.revert_to_snapshot(volume, first)
    _qemu_io(path, fmt, "read -P 0x11 0 1M", "read -P 0 1M 1M", "read -P 0 2047M 1M")
    if fmt == "raw":  # in place: a loop device serving the file sees the reverted data
        assert os.stat(path).st_ino == inode and os.path.getsize(path) == 2 << 30
    driver.revert_to_snapshot(volume, second)  # a later snapshot is still whole after reverting to an earlier one
    _qemu_io(path, fmt, "read -P 0x22 0 1M", "read -P 0x33 1M 1M")
    _qemu_io(driver.snapshot_path(first), fmt, "read -P 0x11 0 1M", "read -P 0 1M 1M")

    copy = Volume(id="44444444-4444-4444-8444-444444444444", name="c", backend="lab", size=1, status="available")
    copy.driver_data = driver.create_volume_from_snapshot(copy, second)
    driver.delete_snapshot(second)  # qcow2: kept hidden, two images are on it
    driver.revert_to_snapshot(volume, first)  # ... merged into the copy once the revert leaves it one
    _qemu_io(path, fmt, "read -P 0x11 0 1M", "read -P 0 1M 1M")
    _qemu_io(driver.volume_path(copy), fmt, "read -P 0x22 0 1M", "read -P 0x33 1M 1M")
    assert driver.list_leftovers() == []
    assert sorted(os.listdir(tmp_path)) == sorted([f"volume-{volume.id}", f"volume-{copy.id}", f"snapshot-{first.id}"])


def test_file_driver_revert_needs_the_snapshot(tmp_path):
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path)})
    driver.check_setup()
    volume = Volume(id=VOLUME.id, name="v", backend="lab", size=1, status="available")
    volume.driver_data = driver.create_volume(volume)
    with pytest.raises(DriverError, match=r"snapshot image .* is missing") as caught:
        driver.revert_to_snapshot(volume, SNAPSHOT)
    assert caught.value.option == "revert_to"


def test_cinder_adapter_leaves_existence_to_the_records():
    driver = build_driver({"name": "c", "driver": "cinder", "volume_driver": "cinder.volume.drivers.rbd.RBDDriver"})
    with pytest.raises(DriverError, match="cannot tell whether one volume exists"):
        driver.volume_exists(VOLUME)
    with pytest.raises(DriverError, match="cannot tell whether one snapshot exists"):
        driver.snapshot_exists(SNAPSHOT)
