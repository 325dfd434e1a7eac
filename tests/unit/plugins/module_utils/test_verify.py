# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A task with nothing to do checks its object on the backend (issue 12, "the backend is the truth").

Tasks run as a module without the action plugin does (run_task with perform as the executor), on
the real file driver in a temp directory; objects are changed behind the collection's back.
"""

from __future__ import annotations

import os
import shutil

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource


class Lab:
    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.store = MemoryStore()
        self.driver = build_driver({"name": "lab", "driver": "file", "path": path, "format": fmt})

    def run(self, handler, check_mode: bool = False, **params) -> dict:
        def execute(records: list, new_ids: list):
            return perform(handler, self.driver, params, records, new_ids, check_mode)
        return run_task(self.store, handler, "lab", params, check_mode, execute)

    def record(self, kind: str, name: str) -> dict:
        return self.store.find("lab", kind, name=name)[0]

    def image(self, volume: dict) -> str:
        return os.path.join(self.path, f"volume-{volume['id']}")

    def files(self) -> list[str]:
        return sorted(os.listdir(self.path))


NO_QEMU_IMG = "qemu-img is not installed (Debian package qemu-utils)"
QCOW2 = pytest.param("qcow2", marks=pytest.mark.skipif(not shutil.which("qemu-img"), reason=NO_QEMU_IMG))


@pytest.fixture(params=["raw", QCOW2])
def lab(request, tmp_path) -> Lab:
    return Lab(str(tmp_path / "lab"), request.param)


@pytest.fixture
def raw_lab(tmp_path) -> Lab:
    return Lab(str(tmp_path / "lab"), "raw")


def test_an_untouched_volume_and_snapshot_are_ok_and_unchanged(lab):
    lab.run(VolumeResource, name="v1", size=1)
    lab.run(SnapshotResource, name="s1", volume="v1")
    before = (lab.store.all_records(), lab.files())
    assert lab.run(VolumeResource, name="v1", size=1)["changed"] is False
    assert lab.run(SnapshotResource, name="s1", volume="v1")["changed"] is False
    assert (lab.store.all_records(), lab.files()) == before


def test_a_missing_image_fails_naming_it_marks_the_record_error_and_creates_nothing(lab):
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.unlink(lab.image(volume))
    for _run in range(2):  # a re-run never re-creates it empty either
        with pytest.raises(Conflict) as failed:
            lab.run(VolumeResource, name="v1", size=1)
        assert f"volume 'v1' ({volume['id']})" in failed.value.msg
        assert f"{lab.image(volume)} is missing from the backend" in failed.value.msg
        assert "state: absent" in failed.value.msg and "put the object back" in failed.value.msg
        assert failed.value.msg.endswith("create the volume again (empty)")
        assert lab.record("volume", "v1")["status"] == "error"
        assert lab.files() == []
    # A bigger size does not create it either.
    with pytest.raises(Conflict, match="is missing from the backend"):
        lab.run(VolumeResource, name="v1", size=2)
    assert lab.files() == [] and lab.record("volume", "v1")["status"] == "error"


def test_a_missing_image_found_in_check_mode_changes_no_record(raw_lab):
    volume = raw_lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.unlink(raw_lab.image(volume))
    before = raw_lab.store.all_records()
    with pytest.raises(Conflict, match="is missing from the backend"):
        raw_lab.run(VolumeResource, check_mode=True, name="v1", size=1)
    assert raw_lab.store.all_records() == before


def test_an_image_put_back_brings_the_record_back(lab):
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.rename(lab.image(volume), lab.image(volume) + ".away")
    with pytest.raises(Conflict):
        lab.run(VolumeResource, name="v1", size=1)
    os.rename(lab.image(volume) + ".away", lab.image(volume))
    back = lab.run(VolumeResource, name="v1", size=1)
    assert back["changed"] is True and back["volume"]["status"] == "available"
    assert lab.run(VolumeResource, name="v1", size=1)["changed"] is False


def test_a_record_marked_missing_is_deleted_with_state_absent(raw_lab):
    volume = raw_lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.unlink(raw_lab.image(volume))
    with pytest.raises(Conflict):
        raw_lab.run(VolumeResource, name="v1", size=1)
    assert raw_lab.run(VolumeResource, name="v1", state="absent")["changed"] is True
    assert raw_lab.store.all_records() == [] and raw_lab.files() == []


def test_an_image_shrunk_outside_grows_back_to_its_record(raw_lab):
    volume = raw_lab.run(VolumeResource, name="v1", size=2)["volume"]
    os.truncate(raw_lab.image(volume), GiB)
    result = raw_lab.run(VolumeResource, name="v1")
    assert result["changed"] is True
    assert result["actions"] == [f"grow {raw_lab.image(volume)} back to the 2 GiB of its record: it is {GiB} "
                                 "bytes on the backend (shrunk outside the collection)"]
    assert os.path.getsize(raw_lab.image(volume)) == 2 * GiB


def test_an_image_shrunk_outside_and_a_larger_size_given_is_one_extend_to_that_size(raw_lab):
    volume = raw_lab.run(VolumeResource, name="v1", size=2)["volume"]
    os.truncate(raw_lab.image(volume), GiB)
    result = raw_lab.run(VolumeResource, name="v1", size=3)
    assert result["actions"] == ["extend volume 'v1' from 2 to 3 GiB"]
    assert result["volume"]["size"] == 3 and os.path.getsize(raw_lab.image(volume)) == 3 * GiB


def test_an_image_grown_outside_is_refused_until_the_size_is_given(raw_lab):
    volume = raw_lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.truncate(raw_lab.image(volume), 2 * GiB)
    before = raw_lab.store.all_records()
    with pytest.raises(Conflict) as failed:
        raw_lab.run(VolumeResource, name="v1", size=1)
    assert failed.value.option == "size"
    assert f"is {2 * GiB} bytes on the backend" in failed.value.msg and "grown outside" in failed.value.msg
    assert raw_lab.store.all_records() == before
    assert os.path.getsize(raw_lab.image(volume)) == 2 * GiB
    assert raw_lab.run(VolumeResource, name="v1", size=2)["volume"]["size"] == 2
    assert raw_lab.run(VolumeResource, name="v1", size=2)["changed"] is False


def test_a_qcow2_image_replaced_by_a_raw_file_is_refused(lab):
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    if lab.driver.conf["format"] == "raw":
        # A raw volume whose data starts like a qcow2 header is still raw: the record says so.
        with open(lab.image(volume), "r+b") as image:
            image.write(b"QFI\xfb" + bytes(20) + (5 * GiB).to_bytes(8, "big"))
        assert lab.run(VolumeResource, name="v1", size=1)["changed"] is False
        return
    os.unlink(lab.image(volume))
    with open(lab.image(volume), "wb") as image:
        image.truncate(GiB)
    with pytest.raises(Conflict, match="is not the qcow2 image its record says"):
        lab.run(VolumeResource, name="v1", size=1)
    assert lab.record("volume", "v1")["status"] == "available"


def test_a_missing_snapshot_fails_naming_it_and_marks_only_its_record(raw_lab):
    # raw: a qcow2 snapshot is its volume's backing file, whose removal breaks the volume too.
    lab = raw_lab
    lab.run(VolumeResource, name="v1", size=1)
    snap = lab.run(SnapshotResource, name="s1", volume="v1")["snapshot"]
    path = os.path.join(lab.path, f"snapshot-{snap['id']}")
    os.unlink(path)
    with pytest.raises(Conflict) as failed:
        lab.run(SnapshotResource, name="s1", volume="v1")
    assert f"snapshot 's1' ({snap['id']})" in failed.value.msg and f"{path} is missing" in failed.value.msg
    # A snapshot made again holds its volume's data of then, not the lost one's.
    assert failed.value.msg.endswith("create the snapshot again (of its volume as it is now)")
    assert lab.record("snapshot", "s1")["status"] == "error"
    assert lab.record("volume", "v1")["status"] == "available"
    assert not os.path.exists(path)
    with pytest.raises(Conflict, match="is missing from the backend"):  # not taken again silently
        lab.run(SnapshotResource, name="s1", volume="v1")
    assert not os.path.exists(path)
