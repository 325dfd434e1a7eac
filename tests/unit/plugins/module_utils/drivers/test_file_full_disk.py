# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A full backend directory, for real: a 72 MiB tmpfs (size=) as the file driver's directory.

Create, clone and snapshot on the full filesystem fail with a clear message naming the directory,
leave nothing behind (no `clone-base-*`, no `.tmp`, no record) and the source volume byte-identical;
once space is freed, the same tasks converge.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

MiB = 1 << 20
DATA = 20 * MiB  # on a 72 MiB filesystem: room for the source, a snapshot and a clone once freed


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=72M,mode=0700", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory) -> None:
    """Write until the filesystem refuses."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\x01" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)


def digest(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def holds_data(path, fmt: str, data: bytes) -> bool:
    """Whether the volume's first bytes, as a guest reads them, are `data`."""
    if fmt == "raw":
        with open(path, "rb") as handle:
            return handle.read(len(data)) == data
    out = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", f"read -P 0x5a 0 {len(data)}", str(path)],
                         capture_output=True, text=True, check=False)
    return out.returncode == 0 and "verification failed" not in out.stdout + out.stderr


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_a_full_directory_is_said_clearly_leaves_nothing_and_the_same_tasks_converge_once_freed(
        small_fs, tmp_path, fmt):
    if fmt == "qcow2" and not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    store = JsonFileStore(str(tmp_path / "state.json"))
    lab = small_fs / "lab"

    def run(handler, **params):
        driver = build_driver({"name": "lab", "driver": "file", "path": str(lab), "format": fmt})
        return dispatch(handler, Task(params, driver=driver), store=store)[0]

    source_id = run(VolumeResource, name="v1", size=1)["volume"]["id"]
    source = lab / f"volume-{source_id}"
    if fmt == "raw":
        data = os.urandom(DATA)
        with open(source, "r+b") as handle:
            handle.write(data)
    else:
        data = b"\x5a" * DATA
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {DATA}", str(source)], check=True,
                       capture_output=True)
    fill(small_fs)
    before = digest(source)
    files = sorted(os.listdir(lab))
    records = store.all_records()

    tasks = [(SnapshotResource, {"name": "s1", "volume": "v1"}),
             (VolumeResource, {"name": "c1", "source": {"volume": "v1"}})]
    if fmt == "qcow2":  # a raw volume is a sparse file: made on a full filesystem, it takes no space
        tasks.insert(0, (VolumeResource, {"name": "v2", "size": 1}))
    for handler, params in tasks:
        with pytest.raises(DriverError) as full:
            run(handler, **params)
        assert full.value.option == "backend.path"
        assert f"no space left in {lab}" in str(full.value) and "run the task again" in str(full.value)
        assert sorted(os.listdir(lab)) == files, params
        assert store.all_records() == records and digest(source) == before

    os.unlink(small_fs / "filler")
    for handler, params in tasks:
        result = run(handler, **params)
        assert result["changed"] and result[handler.result_key]["status"] == "available"
    clone = next(r for r in store.all_records() if r.get("name") == "c1")
    assert holds_data(source, fmt, data) and holds_data(lab / f"volume-{clone['id']}", fmt, data)
    drift = run(BackendInfo, check_drift=True)["drift"]
    assert drift["in_sync"], drift["problems"]
