# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A task with nothing to do checks its object on the backend (issue 12, "the backend is the truth").

Tasks run as a module without the action plugin does (run_task with perform as the executor), on
the real file driver in a temp directory; objects are changed behind the collection's back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.probe import __file__ as PROBE_FILE
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

PROBE_SOURCE = open(PROBE_FILE, encoding="utf-8").read()


def probe_on_this_host(requests: list) -> list | None:
    """What plugin_utils/host_probe.py does over the task's connection: probe.py run as a script."""
    done = subprocess.run([sys.executable, "-I", "-c", PROBE_SOURCE, json.dumps(requests)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


class Lab:
    """A file backend in a temp directory. way "module": every task ships the module (perform), as with
    blockstore_always_run_module; way "probe": as the action plugin runs a task by default, a task with
    nothing to do is answered without the module when probe.py, run as a process, agrees with the record."""

    def __init__(self, path: str, fmt: str, way: str = "module") -> None:
        self.path = path
        self.way = way
        self.store = MemoryStore()
        self.backend = {"name": "lab", "driver": "file", "path": path, "format": fmt}
        self.driver = build_driver(self.backend)
        self.shipped = 0

    def run(self, handler, check_mode: bool = False, **params) -> dict:
        def execute(records: list, new_ids: list):
            self.shipped += 1
            return perform(handler, self.driver, params, records, new_ids, check_mode)
        if self.way == "module":
            return run_task(self.store, handler, "lab", params, check_mode, execute)
        on_controller = build_driver(self.backend)  # the action plugin's own driver: the host only through its probe
        on_controller.probe_on_host = probe_on_this_host
        return run_task(self.store, handler, "lab", params, check_mode, execute, answer_noop=lambda result: result,
                        driver=on_controller)

    def record(self, kind: str, name: str) -> dict:
        return self.store.find("lab", kind, name=name)[0]

    def image(self, volume: dict) -> str:
        return os.path.join(self.path, f"volume-{volume['id']}")

    def files(self) -> list[str]:
        return sorted(os.listdir(self.path))


NO_QEMU_IMG = "qemu-img is not installed (Debian package qemu-utils)"
NEEDS_QEMU_IMG = pytest.mark.skipif(not shutil.which("qemu-img"), reason=NO_QEMU_IMG)
WAYS = ["module", "probe"]


@pytest.fixture(params=[pytest.param(("raw", way), id=f"raw-{way}") for way in WAYS]
                + [pytest.param(("qcow2", way), id=f"qcow2-{way}", marks=NEEDS_QEMU_IMG) for way in WAYS])
def lab(request, tmp_path) -> Lab:
    fmt, way = request.param
    return Lab(str(tmp_path / "lab"), fmt, way)


@pytest.fixture(params=WAYS)
def raw_lab(request, tmp_path) -> Lab:
    return Lab(str(tmp_path / "lab"), "raw", request.param)


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


@pytest.mark.parametrize("fmt", ["raw", pytest.param("qcow2", marks=NEEDS_QEMU_IMG)])
def test_an_object_the_probe_finds_as_recorded_is_answered_without_the_module(tmp_path, fmt):
    probed, always = Lab(str(tmp_path / "p"), fmt, "probe"), Lab(str(tmp_path / "m"), fmt, "module")
    for lab in probed, always:
        lab.run(VolumeResource, name="v1", size=1)
        lab.run(SnapshotResource, name="s1", volume="v1")
        made = lab.shipped
        assert lab.run(VolumeResource, name="v1", size=1)["changed"] is False
        assert lab.run(SnapshotResource, name="s1", volume="v1")["changed"] is False
        # The same answer either way; the module ran only where the probe was not used (the positive control).
        assert lab.shipped - made == (0 if lab is probed else 2)


@pytest.mark.parametrize("change", ["removed", "shrunk", "grown", "marked missing"])
def test_a_difference_the_probe_finds_sends_the_task_to_the_module(raw_lab, change):
    volume = raw_lab.run(VolumeResource, name="v1", size=2)["volume"]
    if change == "removed":
        os.unlink(raw_lab.image(volume))
    elif change in ("shrunk", "grown"):
        os.truncate(raw_lab.image(volume), GiB if change == "shrunk" else 3 * GiB)
    else:  # put back after the module marked it missing: the module clears the mark
        os.rename(raw_lab.image(volume), raw_lab.image(volume) + ".away")
        with pytest.raises(Conflict):
            raw_lab.run(VolumeResource, name="v1")
        os.rename(raw_lab.image(volume) + ".away", raw_lab.image(volume))
    shipped = raw_lab.shipped
    with contextlib.suppress(Conflict):
        raw_lab.run(VolumeResource, name="v1")
    assert raw_lab.shipped == shipped + 1


@pytest.mark.parametrize("report", [None, [], [{}], [{"exists": True, "size": "x"}], ["nonsense"]])
def test_a_probe_without_a_usable_report_sends_the_task_to_the_module(tmp_path, report):
    lab = Lab(str(tmp_path / "lab"), "raw", "probe")
    lab.run(VolumeResource, name="v1", size=1)
    shipped = lab.shipped
    on_controller = build_driver(lab.backend)
    on_controller.probe_on_host = lambda _requests: report

    def execute(records: list, new_ids: list):
        lab.shipped += 1
        return perform(VolumeResource, lab.driver, {"name": "v1"}, records, new_ids, False)
    result = run_task(lab.store, VolumeResource, "lab", {"name": "v1"}, False, execute,
                      answer_noop=lambda answer: answer, driver=on_controller)
    assert result["changed"] is False and lab.shipped == shipped + 1


def test_a_task_that_asked_for_the_store_answer_trusts_the_store(tmp_path):
    # blockstore_noop_answer: store: no probe on the driver, so a removed image goes unseen (the documented trade-off).
    lab = Lab(str(tmp_path / "lab"), "raw", "module")
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    os.unlink(lab.image(volume))
    result = run_task(lab.store, VolumeResource, "lab", {"name": "v1"}, False, None,
                      answer_noop=lambda answer: answer, driver=build_driver(lab.backend))
    assert result["changed"] is False and result["volume"]["status"] == "available"


def test_the_probe_reads_a_regular_file_only(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.probe import probe_file
    (tmp_path / "image").write_bytes(b"QFI\xfb" + bytes(60))
    os.mkfifo(tmp_path / "fifo")  # opening it would block for ever
    assert probe_file(str(tmp_path / "image"), 4) == {"exists": True, "regular": True, "size": 64, "head": "514649fb"}
    assert probe_file(str(tmp_path / "fifo"), 4) == {"exists": True, "regular": False, "size": 0}
    assert probe_file(str(tmp_path / "none"), 4) == {"exists": False}
    assert probe_on_this_host([{"path": str(tmp_path / "image")}]) == [{"exists": True, "regular": True, "size": 64}]
