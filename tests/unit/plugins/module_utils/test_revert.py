# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_volume's revert_to on the real file driver in a temp directory: data, idempotence (the
`reverted_to` marker and read-write connections), check mode, refusals, and interrupted reverts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    Conflict,
    DriverError,
    InvalidParameter,
    NotFound,
)
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import run_task
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab as ResourceLab


class Lab(ResourceLab):
    def __init__(self, path: str, fmt: str) -> None:
        super().__init__(path, fmt, MemoryStore())

    def volume_record(self, name: str) -> dict:
        return self.store.find("lab", "volume", name=name)[0]

    def io(self, name: str, *ops: str) -> None:
        path = os.path.join(self.path, f"volume-{self.volume_record(name)['id']}")
        args = [a for op in ops for a in ("-c", op)]
        proc = subprocess.run(["qemu-io", "-f", self.format, *args, path], capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "Pattern verification failed" not in proc.stdout + proc.stderr, proc

    def state(self) -> tuple:
        files = {n: (os.path.getsize(os.path.join(self.path, n)), os.stat(os.path.join(self.path, n)).st_mtime_ns)
                 for n in sorted(os.listdir(self.path))}
        return sorted(json.dumps(r, sort_keys=True) for r in self.store.all_records()), files


def make_lab(path: str, fmt: str) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    made = Lab(path, fmt)
    made.volume(name="db", size=1)
    made.io("db", "write -P 0x11 0 1M")
    made.run(SnapshotResource, volume="db", name="before")
    made.io("db", "write -P 0x22 0 1M", "write -P 0x33 1M 1M")
    return made


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    return make_lab(str(tmp_path / "backend"), request.param)


def test_revert_brings_back_the_snapshot_then_changes_nothing(lab):
    snap = lab.store.find("lab", "snapshot", name="before")[0]
    before = lab.state()
    planned = lab.volume(name="db", revert_to="before", check_mode=True)
    assert planned["changed"] and planned["actions"] == ["revert volume 'db' to snapshot 'before'"]
    assert planned["diff"]["before"]["reverted_to"] is None and planned["diff"]["after"]["reverted_to"] == snap["id"]
    assert lab.state() == before  # check mode changed nothing
    lab.io("db", "read -P 0x22 0 1M")

    done = lab.volume(name="db", revert_to="before")
    assert done["changed"] and done["volume"]["reverted_to"] == snap["id"] and done["volume"]["status"] == "available"
    lab.io("db", "read -P 0x11 0 1M", "read -P 0 1M 1M")
    again = lab.volume(name="db", revert_to=snap["id"])
    assert not again["changed"] and again["actions"] == []


def test_a_new_read_write_connection_makes_the_revert_needed_again(lab):
    lab.volume(name="db", revert_to="before", multiattach=True)
    lab.run(AttachmentResource, volume="db", state="connected", mode="ro", connector={"host": "reader"})
    assert not lab.volume(name="db", revert_to="before")["changed"]  # read-only: nothing could write

    lab.run(AttachmentResource, volume="db", state="connected", connector={"host": "h1"})
    assert lab.volume_record("db")["reverted_to"] is None
    refused_state = lab.state()
    with pytest.raises(Conflict, match="connected read-write to h1; detach it first") as caught:
        lab.volume(name="db", revert_to="before")
    assert caught.value.option == "revert_to" and lab.state() == refused_state

    lab.io("db", "write -P 0x44 0 1M")
    forced = lab.volume(name="db", revert_to="before", force=True)
    assert forced["changed"] and forced["volume"]["status"] == "in-use"
    lab.io("db", "read -P 0x11 0 1M")
    assert lab.volume(name="db", revert_to="before", force=True)["changed"]  # still writable: reverted again
    lab.run(AttachmentResource, volume="db", state="detached", connector={"host": "h1"})
    lab.io("db", "write -P 0x55 0 1M")  # written before the detach: the next revert must not be skipped
    assert lab.volume(name="db", revert_to="before")["changed"]
    lab.io("db", "read -P 0x11 0 1M")
    assert not lab.volume(name="db", revert_to="before")["changed"]


def test_a_stale_device_is_no_writer(lab):
    """A connection left stale by a forced detach (its export removed: that host can no longer write) does not
    hold a revert back, nor keep the reverted volume in use."""
    lab.volume(name="db", revert_to="before")
    lab.run(AttachmentResource, volume="db", state="connected", connector={"host": "h1"})
    with pytest.raises(Conflict, match="connected read-write to h1"):  # positive control: a live writer
        lab.volume(name="db", revert_to="before")
    conn = lab.store.find("lab", "connection")[0]
    lab.store.apply(upserts=[dict(conn, status="stale", device={"path": "/dev/loop9", "type": "block"})])
    done = lab.volume(name="db", revert_to="before")
    assert done["changed"] and done["volume"]["status"] == "available" and done["volume"]["reverted_to"]


@pytest.mark.parametrize("params, error, option, text", [
    ({"revert_to": "nope"}, NotFound, "revert_to", "no snapshot 'nope'"),
    ({"revert_to": "other-snap"}, Conflict, "revert_to", "belongs to volume 'other', not 'db'"),
    ({"revert_to": 5}, InvalidParameter, "revert_to", "must be the name or id"),
    ({"revert_to": "before", "state": "absent"}, InvalidParameter, "revert_to", "only with state: present"),
    ({"revert_to": "before", "size": "512M"}, InvalidParameter, "size", "not a whole number of GiB"),
])
def test_bad_revert_is_refused_naming_the_option_and_changes_nothing(lab, params, error, option, text):
    lab.volume(name="other", size=1)
    lab.run(SnapshotResource, volume="other", name="other-snap")
    before = lab.state()
    with pytest.raises(error, match=text) as caught:
        lab.volume(name="db", **params)
    assert caught.value.option == option and lab.state() == before
    assert lab.volume(name="db", revert_to="before")["changed"]  # the positive control


def test_a_revert_with_a_size_keeps_or_grows_the_volume_but_never_shrinks_it(lab):
    lab.volume(name="db", size=2)
    before = lab.state()
    with pytest.raises(Conflict, match="volume 'db' is 2 GiB; volumes only grow, so 1 GiB is refused") as caught:
        lab.volume(name="db", size=1, revert_to="before")
    assert caught.value.option == "size" and lab.state() == before
    same = lab.volume(name="db", size=2, revert_to="before")  # the size it has: a plain revert
    assert same["actions"] == ["revert volume 'db' to snapshot 'before'"] and same["volume"]["size"] == 2
    lab.io("db", "read -P 0x11 0 1M")
    lab.io("db", "write -P 0x44 0 1M")
    lab.run(SnapshotResource, volume="db", name="later")
    lab.io("db", "write -P 0x55 0 1M")
    grown = lab.volume(name="db", size=3, revert_to="later")
    assert grown["actions"] == ["revert volume 'db' to snapshot 'later' and grow it to 3 GiB"]
    assert grown["volume"]["size"] == 3
    lab.io("db", "read -P 0x44 0 1M", "read -P 0 2G 1M")


def test_revert_of_a_volume_that_does_not_exist_is_refused(lab):
    with pytest.raises(NotFound, match="no volume 'new' on backend 'lab' to revert") as caught:
        lab.volume(name="new", size=1, revert_to="before")
    assert caught.value.option == "revert_to" and lab.store.find("lab", "volume", name="new") == []


def test_a_killed_revert_is_finished_by_the_next_run(lab):
    def killed(records: list, new_ids: list):
        return {}, None  # the module died: the pending record stays
    run_task(lab.store, VolumeResource, "lab", {"name": "db", "revert_to": "before"}, False, killed)
    left = lab.volume_record("db")
    assert left["status"] == "reverting" and left["reverted_to"]
    finished = lab.volume(name="db")
    assert finished["actions"] == ["revert volume 'db' to snapshot 'before' again (the last revert did not finish)"]
    assert lab.volume_record("db")["status"] == "available"
    lab.io("db", "read -P 0x11 0 1M", "read -P 0 1M 1M")


def test_a_failed_revert_stays_reverting_and_another_snapshot_gets_it_out(tmp_path):
    lab = make_lab(str(tmp_path / "backend"), "raw")  # a qcow2 volume needs its snapshot's file to exist at all
    lab.run(SnapshotResource, volume="db", name="later")
    gone = lab.store.find("lab", "snapshot", name="before")[0]
    os.unlink(os.path.join(lab.path, f"snapshot-{gone['id']}"))  # removed behind the collection's back
    with pytest.raises(DriverError, match=r"snapshot image .* is missing"):
        lab.volume(name="db", revert_to="before")
    assert lab.volume_record("db")["status"] == "reverting"  # the data is not known to be the old one any more
    assert lab.volume(name="db", revert_to="later")["changed"]
    assert lab.volume_record("db")["status"] == "available"
    lab.io("db", "read -P 0x22 0 1M", "read -P 0x33 1M 1M")
