# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_volume_info usage: true - allocated bytes from the real file driver, and the task
measured where the module runs (never answered from the store alone)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task
from ansible_collections.blockstore.storage.plugins.module_utils.objects import RecordSet
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.queries import VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab

MiB = 1 << 20


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    return Lab(str(tmp_path / "backend"), request.param, MemoryStore())


def usage(lab: Lab, **params) -> list[dict]:
    return VolumeInfo.run(RecordSet("lab", lab.store.find("lab")), params, lab.driver)["volumes"]


def test_allocated_bytes_follow_the_data_written(lab):
    made = lab.volume(name="u", size=1)["volume"]
    empty = usage(lab, name="u", usage=True)[0]["allocated_bytes"]
    assert 0 <= empty < MiB  # sparse: 1 GiB in size, (almost) nothing on disk
    path = os.path.join(lab.path, f"volume-{made['id']}")
    subprocess.run(["qemu-io", "-f", lab.format, "-c", "write -P 0x11 0 4M", path], check=True, capture_output=True)
    written = usage(lab, name="u", usage=True)[0]
    assert empty + 4 * MiB <= written["allocated_bytes"] < empty + 5 * MiB
    assert written["size"] == 1 and written["id"] == made["id"]

    lab.run(SnapshotResource, volume="u", name="s")
    after = usage(lab, name="u", usage=True)[0]["allocated_bytes"]
    # qcow2: the data moved to the frozen snapshot image, the volume's overlay is new; raw: a full copy.
    assert after < MiB if lab.format == "qcow2" else after == written["allocated_bytes"]
    assert "allocated_bytes" not in usage(lab, name="u")[0]


def test_usage_of_a_volume_whose_file_is_gone_is_null(lab):
    made = lab.volume(name="u", size=1)["volume"]
    os.unlink(os.path.join(lab.path, f"volume-{made['id']}"))
    assert usage(lab, name="u", usage=True)[0]["allocated_bytes"] is None


def test_usage_is_measured_where_the_module_runs(lab):
    lab.volume(name="u", size=1)
    calls = []

    def ship(records: list, new_ids: list):
        calls.append("ship")
        return VolumeInfo.on_host(Task({"usage": True}, driver=lab.driver, records=records))

    def answer_noop(result: dict) -> dict:
        calls.append("answered from the store")
        return result
    shipped = VolumeInfo.on_store(Task({"usage": True}, driver=lab.driver), lab.store, ship, answer_noop)
    assert calls == ["ship"] and shipped["volumes"][0]["allocated_bytes"] is not None
    answered = VolumeInfo.on_store(Task({}, driver=lab.driver), lab.store, ship, answer_noop)
    assert calls == ["ship", "answered from the store"] and "allocated_bytes" not in answered["volumes"][0]


def test_usage_must_be_a_boolean(lab):
    with pytest.raises(InvalidParameter, match="usage: must be a boolean") as caught:
        usage(lab, usage="yes")
    assert caught.value.option == "usage"
