# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver operations no module calls yet (volume_exists, snapshot_exists, revert_to_snapshot):
what each driver answers, so that their later callers can rely on it. The rbd driver's are run
against the test Ceph in test_rbd_driver_cluster.py."""

from __future__ import annotations

import shutil

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


def test_file_driver_cannot_revert(tmp_path):
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path)})
    with pytest.raises(DriverError, match="driver 'file' cannot revert a volume to a snapshot") as caught:
        driver.revert_to_snapshot(VOLUME, SNAPSHOT)
    assert caught.value.option == "snapshot"


def test_cinder_adapter_leaves_existence_to_the_records():
    driver = build_driver({"name": "c", "driver": "cinder", "volume_driver": "cinder.volume.drivers.rbd.RBDDriver"})
    with pytest.raises(DriverError, match="cannot tell whether one volume exists"):
        driver.volume_exists(VOLUME)
    with pytest.raises(DriverError, match="cannot tell whether one snapshot exists"):
        driver.snapshot_exists(SNAPSHOT)
