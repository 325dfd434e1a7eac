# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_task(): pending records before the storage work, truthful records after it, whatever happens."""

from __future__ import annotations

import contextlib
import os

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError, InvalidParameter, NotFound
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource


class KeyRecordingStore(MemoryStore):
    """A memory store that remembers which lock keys each task held."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[set] = []

    @contextlib.contextmanager
    def locked(self, keys):
        self.held.append(set(keys))
        with super().locked(keys):
            yield


@pytest.fixture
def store() -> KeyRecordingStore:
    return KeyRecordingStore()


@pytest.fixture
def driver(tmp_path):
    return build_driver({"name": "lab", "driver": "file", "path": str(tmp_path / "lab")})


def module(driver, params, check_mode=False):
    """The executor a module is: perform() on the records it is sent."""
    return lambda records, new_ids: perform(VolumeResource, driver, params, records, new_ids, check_mode)


def run(store, driver, check_mode=False, handler=VolumeResource, **params):
    def execute(records, new_ids):
        return perform(handler, driver, params, records, new_ids, check_mode)
    return run_task(store, handler, "lab", params, check_mode, execute)


def test_the_pending_record_is_stored_before_the_module_runs(store, driver):
    params = {"name": "data1", "size": 1}
    seen = {}

    def executor(records, new_ids):
        seen["store"] = store.find("lab", "volume", name="data1")
        seen["new_ids"] = list(new_ids)
        assert not os.path.exists(os.path.join(driver.path, f"volume-{new_ids[0]}"))  # no storage work yet
        return module(driver, params)(records, new_ids)

    result = run_task(store, VolumeResource, "lab", params, False, executor)
    pending, = seen["store"]
    assert pending["status"] == "creating"
    assert seen["new_ids"] == [pending["id"]] == [result["volume"]["id"]]  # controller and module agree on the id
    final, = store.find("lab", "volume", name="data1")
    assert final["status"] == "available" and final["id"] == pending["id"]


def test_extend_is_pending_as_extending(store, driver):
    run(store, driver, name="data1", size=1)
    seen = {}
    params = {"name": "data1", "size": 2}

    def executor(records, new_ids):
        seen["status"] = store.find("lab", "volume", name="data1")[0]["status"]
        return module(driver, params)(records, new_ids)

    run_task(store, VolumeResource, "lab", params, False, executor)
    assert seen["status"] == "extending"
    assert store.find("lab", "volume", name="data1")[0]["status"] == "available"


def test_a_failing_create_leaves_the_store_as_before(store, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = build_driver({"name": "lab", "driver": "file", "path": str(blocker / "lab")})
    with pytest.raises(DriverError, match="cannot create directory"):
        run(store, broken, name="data1", size=1)
    assert store.all_records() == []


def test_a_failing_extend_leaves_the_store_as_before(store, driver):
    volume = run(store, driver, name="data1", size=1)["volume"]
    before = store.all_records()
    path = os.path.join(driver.path, f"volume-{volume['id']}")
    os.unlink(path)
    os.mkdir(path)  # the storage fails under us: growing a directory fails, even for root
    with pytest.raises(DriverError):
        run(store, driver, name="data1", size=2)
    assert store.all_records() == before


def test_a_failing_delete_stays_visible_as_error_deleting(store, driver):
    volume = run(store, driver, name="data1", size=1)["volume"]
    path = os.path.join(driver.path, f"volume-{volume['id']}")
    os.unlink(path)
    os.mkdir(path)  # unlink() fails on a directory, even for root
    with pytest.raises(DriverError, match="delete volume 'data1'"):
        run(store, driver, name="data1", state="absent")
    assert store.find("lab", "volume", name="data1")[0]["status"] == "error_deleting"
    os.rmdir(path)
    assert run(store, driver, name="data1", state="absent")["changed"] is True  # a re-run finishes it
    assert store.all_records() == []


def test_a_module_that_reports_no_outcome_leaves_the_transient_record_and_a_rerun_converges(store, driver):
    params = {"name": "data1", "size": 1}
    # The module process died: no changes came back (None), whatever it did or did not do.
    run_task(store, VolumeResource, "lab", params, False, lambda records, new_ids: ({"changed": True}, None))
    left, = store.find("lab", "volume", name="data1")
    assert left["status"] == "creating"

    result = run(store, driver, **params)
    assert result["changed"] is True
    assert result["volume"]["id"] == left["id"]
    assert result["volume"]["status"] == "available"
    assert os.path.getsize(os.path.join(driver.path, f"volume-{left['id']}")) == GiB
    assert run(store, driver, **params)["changed"] is False


def test_an_interrupted_delete_is_finished_by_the_next_run(store, driver):
    volume = run(store, driver, name="data1", size=1)["volume"]
    params = {"name": "data1", "state": "absent"}
    run_task(store, VolumeResource, "lab", params, False, lambda records, new_ids: ({"changed": True}, None))
    assert store.find("lab", "volume", name="data1")[0]["status"] == "deleting"
    with pytest.raises(Exception, match="interrupted"):
        run(store, driver, name="data1", size=1)  # not silently reused
    assert run(store, driver, **params)["changed"] is True
    assert store.all_records() == []
    assert not os.path.exists(os.path.join(driver.path, f"volume-{volume['id']}"))


def test_a_module_failing_before_any_storage_work_puts_the_pending_records_back(store, driver):
    run(store, driver, name="data1", size=1)
    before = store.all_records()

    def failing(records, new_ids):
        error = DriverError("the module failed before doing anything")
        error.changes = {"upserts": [], "deletes": []}  # it reports that it changed nothing
        raise error

    with pytest.raises(DriverError):
        run_task(store, VolumeResource, "lab", {"name": "data1", "size": 2}, False, failing)
    assert store.all_records() == before
    with pytest.raises(DriverError):
        run_task(store, VolumeResource, "lab", {"name": "data2", "size": 1}, False, failing)
    assert store.all_records() == before


def test_a_module_failing_without_saying_what_it_did_leaves_the_pending_record(store, driver):
    def failing(records, new_ids):
        raise DriverError("lost contact with the host")

    with pytest.raises(DriverError):
        run_task(store, VolumeResource, "lab", {"name": "data1", "size": 1}, False, failing)
    assert store.find("lab", "volume", name="data1")[0]["status"] == "creating"  # unknown outcome: keep it visible
    assert run(store, driver, name="data1", size=1)["volume"]["status"] == "available"


def test_check_mode_writes_nothing_not_even_pending_records(store, driver):
    seen = {}
    params = {"name": "data1", "size": 1}

    def executor(records, new_ids):
        seen["records"] = store.all_records()
        return module(driver, params, check_mode=True)(records, new_ids)

    result = run_task(store, VolumeResource, "lab", params, True, executor)
    assert result["changed"] is True
    assert seen["records"] == [] and store.all_records() == []
    assert not os.path.exists(driver.path) or os.listdir(driver.path) == []


def test_in_check_mode_a_snapshot_of_a_volume_only_planned_says_so(store, driver):
    # The playbook's first task, in check mode: the volume is planned, not made.
    assert run(store, driver, check_mode=True, name="ghost", size=1)["changed"] is True
    with pytest.raises(NotFound) as caught:
        run(store, driver, check_mode=True, handler=SnapshotResource, name="snap", volume="ghost")
    message = str(caught.value)
    assert message.startswith("volume: no volume 'ghost' on backend 'lab'")
    assert "in check mode an object that an earlier task of this run would create was only planned" in message
    assert "when: not ansible_check_mode" in message
    # Control: the same snapshot task outside check mode says only what is missing.
    with pytest.raises(NotFound) as caught:
        run(store, driver, handler=SnapshotResource, name="snap", volume="ghost")
    assert str(caught.value) == "volume: no volume 'ghost' on backend 'lab'"


def test_bad_parameters_fail_before_anything_is_written(store, driver):
    called = []
    with pytest.raises(InvalidParameter):
        run_task(store, VolumeResource, "lab", {"name": "data1", "size": "huge"}, False,
                 lambda records, new_ids: called.append(1))
    assert called == [] and store.all_records() == []


def test_tasks_lock_the_objects_they_touch_by_name_and_by_id(store, driver):
    volume = run(store, driver, name="data1", size=1)["volume"]
    store.held.clear()
    run(store, driver, handler=SnapshotResource, volume="data1", name="s1")
    keys = set().union(*store.held)
    assert "lab:volume:name:data1" in keys
    assert f"lab:volume:id:{volume['id']}" in keys
    assert "lab:snapshot:name:s1" in keys
    store.held.clear()
    run(store, driver, name="other", size=1)
    assert not any("data1" in k for k in set().union(*store.held))  # unrelated objects are not locked


def answered_here(result):
    return {**result, "answered": "here"}


def test_a_task_with_nothing_to_do_is_answered_from_its_plan_without_the_module(store, driver):
    run(store, driver, name="data1", size=1)
    run(store, driver, handler=SnapshotResource, volume="data1", name="s1")
    before = store.all_records()
    for handler, params in ((VolumeResource, {"name": "data1", "size": 1}),
                            (VolumeResource, {"name": "gone", "state": "absent"}),
                            (SnapshotResource, {"name": "s1", "volume": "data1"})):
        on_host = run_task(store, handler, "lab", params, False,
                           lambda records, new_ids, h=handler, p=params: perform(h, driver, p, records, new_ids, False))
        here = run_task(store, handler, "lab", params, False, lambda records, new_ids: pytest.fail("module run"),
                        answer_noop=answered_here)
        assert here == {**on_host, "answered": "here"}  # the module's result, exactly
    assert store.all_records() == before  # nothing written, not even a pending record


def test_a_task_with_something_to_do_still_runs_the_module(store, driver):
    run(store, driver, name="data1", size=1)
    ran = []

    def executor(records, new_ids):
        ran.append(1)
        return perform(VolumeResource, driver, {"name": "data1", "size": 2}, records, new_ids, True)

    result = run_task(store, VolumeResource, "lab", {"name": "data1", "size": 2}, True, executor,
                      answer_noop=answered_here)
    assert ran == [1] and "answered" not in result and result["changed"]


def test_only_resources_that_say_so_are_answered_without_the_module(store, driver):
    run(store, driver, name="data1", size=1)

    class HostBoundVolume(VolumeResource):
        noop_on_controller = False

    ran = []

    def executor(records, new_ids):
        ran.append(1)
        return perform(HostBoundVolume, driver, {"name": "data1"}, records, new_ids, False)

    result = run_task(store, HostBoundVolume, "lab", {"name": "data1"}, False, executor, answer_noop=answered_here)
    assert ran == [1] and "answered" not in result
