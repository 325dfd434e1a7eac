# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volume data is private: images 0600 (frozen qcow2 images 0400) in a directory created 0700, whatever the umask;
with image_group, that group gets read-write access (0660, 0440, a setgid 2770 directory)."""

from __future__ import annotations

import grp
import os
import shutil
import stat

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource


@pytest.fixture(autouse=True)
def permissive_umask():
    old = os.umask(0o022)  # the usual umask, under which files were created 0644 and directories 0755
    yield
    os.umask(old)


def _run(driver, store, handler, **params):
    def execute(records, new_ids):
        return perform(handler, driver, params, records, new_ids, False)
    return run_task(store, handler, "lab", params, False, execute)


def _exercise(path: str, fmt: str, **options) -> list[tuple[str, int]]:
    """Every way an image is made: create, snapshot, volume from snapshot, clone, snapshot delete (qcow2 merge)."""
    driver = build_driver({"name": "lab", "driver": "file", "path": path, "format": fmt, **options})
    store = MemoryStore()
    _run(driver, store, VolumeResource, name="v1", size=1)
    _run(driver, store, SnapshotResource, volume="v1", name="s1")
    _run(driver, store, VolumeResource, name="v2", source={"snapshot": "s1"})
    _run(driver, store, VolumeResource, name="v3", source={"volume": "v1"})
    _run(driver, store, SnapshotResource, name="s1", state="absent")
    return sorted((name, stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode)) for name in os.listdir(path)
                  if not name.endswith(".deleted"))


FORMATS = ["raw", "qcow2"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_images_are_0600_and_a_new_directory_0700(tmp_path, fmt):
    if fmt == "qcow2" and not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed")
    path = str(tmp_path / "lab")
    files = _exercise(path, fmt)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert files and all(mode == (0o400 if name.startswith(("snapshot-", "clone-base-")) and fmt == "qcow2"
                                  else 0o600) for name, mode in files), files
    # Positive control of the umask in force: a file made outside the driver is world-readable.
    (tmp_path / "other").write_text("x")
    assert stat.S_IMODE((tmp_path / "other").stat().st_mode) == 0o644


def test_an_existing_directory_keeps_its_mode(tmp_path):
    path = tmp_path / "lab"
    path.mkdir(mode=0o755)
    files = _exercise(str(path), "raw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert all(mode == 0o600 for _name, mode in files), files


@pytest.mark.skipif(os.geteuid() != 0, reason="chgrp to a group one is not in needs root")
@pytest.mark.parametrize("fmt", FORMATS)
def test_image_group_gets_read_write_access(tmp_path, fmt):
    if fmt == "qcow2" and not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed")
    group = grp.getgrgid(100 if any(g.gr_gid == 100 for g in grp.getgrall()) else 1)
    path = tmp_path / "lab"
    files = _exercise(str(path), fmt, image_group=group.gr_name)
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o2770, group.gr_gid)
    for name, mode in files:
        frozen = name.startswith(("snapshot-", "clone-base-")) and fmt == "qcow2"
        assert mode == (0o440 if frozen else 0o660), (name, oct(mode))
        assert os.stat(path / name).st_gid == group.gr_gid, name


def test_an_unknown_image_group_is_refused_and_changes_nothing(tmp_path):
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path / "lab"),
                           "image_group": "no-such-group-x"})
    store = MemoryStore()
    refused = r"backend\.image_group: no group 'no-such-group-x' on this host"
    with pytest.raises(InvalidParameter, match=refused) as error:
        _run(driver, store, VolumeResource, name="v1", size=1)
    assert error.value.option == "backend.image_group"
    assert not (tmp_path / "lab").exists() and store.all_records() == []
