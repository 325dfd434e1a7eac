# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_volume's source.existing (adopt) and keep_storage (forget) on the real file driver in a temp
directory: the round trip keeps the data, check mode and re-runs change nothing, refusals name the option."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import drift
from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file.owner import OWNER_MARKER
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    Conflict,
    DriverError,
    InvalidParameter,
    NotFound,
)
from ansible_collections.blockstore.storage.plugins.module_utils.objects import RecordSet
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import own_id
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab

PATTERN = b"adopted-bytes-" * 1000
UUID = "0b9c6c52-8f0e-4d3a-9a55-3c1c1e0f6b7a"


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    return Lab(str(tmp_path / "lab"), request.param, MemoryStore())


def state(lab) -> tuple:
    files = {n: os.path.getsize(os.path.join(lab.path, n)) for n in lab.files()}
    return sorted(json.dumps(r, sort_keys=True) for r in lab.store.all_records()), files


def unknown(lab) -> list[str]:
    report = drift.check(RecordSet("lab", lab.store.find("lab")), lab.driver, devices=False)
    return [item["id"] for item in report["unknown_objects"]]


def write_pattern(lab, volume_id: str, offset: int = 4096) -> None:
    path = os.path.join(lab.path, f"volume-{volume_id}")
    if lab.format == "raw":
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(PATTERN)
    else:
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a {offset} 64k", path], check=True,
                       capture_output=True)


def read_pattern(lab, volume_id: str, offset: int = 4096) -> bool:
    path = os.path.join(lab.path, f"volume-{volume_id}")
    if lab.format == "raw":
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(len(PATTERN)) == PATTERN
    proc = subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"read -P 0x5a {offset} 64k", path], capture_output=True,
                          text=True, check=False)
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout + proc.stderr


def make_file(lab, name: str, size: int) -> str:
    os.makedirs(lab.path, exist_ok=True)
    path = os.path.join(lab.path, name)
    if lab.format == "qcow2":
        subprocess.run(["qemu-img", "create", "-f", "qcow2", path, str(size)], check=True, capture_output=True)
    else:
        with open(path, "wb") as handle:
            handle.truncate(size)
            handle.seek(4096)
            handle.write(PATTERN)
    return path


def test_own_id_reads_only_the_collections_own_object_names():
    assert own_id(f"volume-{UUID}") == UUID
    assert own_id(f"volume-{UUID.upper()}") is None  # the driver's files are named lower case
    assert own_id(f"snapshot-{UUID}") is None and own_id("volume-legacy") is None and own_id("legacy.img") is None


def test_forget_then_adopt_again_keeps_the_bytes_and_reruns_change_nothing(lab):
    volume_id = lab.volume(name="db", size=1)["volume"]["id"]
    write_pattern(lab, volume_id)
    before = state(lab)
    planned = lab.volume(name="db", state="absent", keep_storage=True, check_mode=True)
    assert planned["changed"] and planned["actions"] == [
        f"forget volume 'db' ({volume_id}), keeping its storage (volume-{volume_id} on the backend)"]
    assert state(lab) == before and unknown(lab) == []

    forgotten = lab.volume(name="db", state="absent", keep_storage=True)
    assert forgotten["changed"] and forgotten["volume"]["status"] == "deleted"
    assert lab.record("volume", "db") is None and lab.files() == [f"volume-{volume_id}"]
    assert unknown(lab) == [volume_id]  # the drift check lists it, as the docs say
    assert not lab.volume(name="db", state="absent", keep_storage=True)["changed"]

    kept = state(lab)
    planned = lab.volume(name="db2", source={"existing": f"volume-{volume_id}"}, check_mode=True)
    assert planned["changed"] and planned["actions"] == [f"adopt 'volume-{volume_id}' as volume 'db2' of 1 GiB"]
    assert planned["diff"]["before"] == {} and planned["diff"]["after"]["size"] == 1 and state(lab) == kept

    adopted = lab.volume(name="db2", source={"existing": f"volume-{volume_id}"})
    assert adopted["changed"] and adopted["volume"]["id"] == volume_id and adopted["volume"]["size"] == 1
    assert adopted["volume"]["status"] == "available" and read_pattern(lab, volume_id)
    assert unknown(lab) == [] and lab.files() == [f"volume-{volume_id}"]
    again = lab.volume(name="db2", source={"existing": f"volume-{volume_id}"})
    assert not again["changed"] and again["actions"] == []
    assert lab.volume(name="db2", size=2)["changed"] and lab.size_gib(volume_id) == 2  # managed as any other
    assert read_pattern(lab, volume_id)


def test_an_object_named_otherwise_is_renamed_only_when_asked(lab):
    make_file(lab, "legacy.img", GiB)
    before = state(lab)
    with pytest.raises(Conflict, match="not named as this collection names volumes") as caught:
        lab.volume(name="legacy", source={"existing": "legacy.img"})
    assert caught.value.option == "source.rename" and state(lab) == before

    adopted = lab.volume(name="legacy", source={"existing": "legacy.img", "rename": True})
    volume_id = adopted["volume"]["id"]
    assert adopted["actions"] == [f"adopt 'legacy.img' as volume 'legacy' of 1 GiB, renamed to volume-{volume_id}"]
    assert lab.files() == [f"volume-{volume_id}"] and lab.record("volume", "legacy")["id"] == volume_id
    if lab.format == "raw":
        assert read_pattern(lab, volume_id)
    assert not lab.volume(name="legacy", source={"existing": "legacy.img", "rename": True})["changed"]
    with pytest.raises(Conflict, match=re.escape("already exists and 'other.img' is not its object")) as caught:
        lab.volume(name="legacy", source={"existing": "other.img", "rename": True})
    assert caught.value.option == "source.existing"


def test_a_size_that_is_not_whole_gib_needs_size_and_the_object_grows_to_it(lab):
    make_file(lab, "odd.img", GiB + 512 * 1024)
    before = state(lab)
    with pytest.raises(Conflict, match="not a whole number of GiB; give size: 2") as caught:
        lab.volume(name="odd", source={"existing": "odd.img", "rename": True})
    assert caught.value.option == "size" and state(lab) == before
    with pytest.raises(Conflict, match="more than 1 GiB; volumes do not shrink") as caught:
        lab.volume(name="odd", size=1, source={"existing": "odd.img", "rename": True})
    assert caught.value.option == "size" and state(lab) == before
    grown = lab.volume(name="odd", size=2, source={"existing": "odd.img", "rename": True})
    assert grown["actions"][0].endswith(f", grown from {GiB + 512 * 1024} bytes")
    assert lab.size_gib(grown["volume"]["id"]) == 2 and grown["volume"]["size"] == 2
    assert not lab.volume(name="odd", size=2, source={"existing": "odd.img", "rename": True})["changed"]


@pytest.mark.parametrize("params, error, option, text", [
    ({"source": {"existing": "nope.img", "rename": True}}, NotFound, "source.existing", "no object 'nope.img'"),
    ({"source": {"existing": "../escape"}}, InvalidParameter, "source.existing", "no '/'"),
    ({"source": {"existing": f"snapshot-{UUID}", "rename": True}}, DriverError, "source.existing",
     "is a snapshot or an internal"),
    ({"source": {"existing": "legacy.img", "volume": "x"}}, InvalidParameter, "source", "exactly one of"),
    ({"source": {"rename": True}}, InvalidParameter, "source.rename", "only with source.existing"),
    ({"source": {"existing": "legacy.img", "rename": True}, "id": UUID, "keep_storage": True}, InvalidParameter,
     "keep_storage", "only with state: absent"),
])
def test_bad_adopt_is_refused_naming_the_option_and_changes_nothing(lab, params, error, option, text):
    make_file(lab, "legacy.img", GiB)
    before = state(lab)
    with pytest.raises(error, match=text) as caught:
        lab.volume(name="legacy", **params)
    assert caught.value.option == option and state(lab) == before
    assert lab.volume(name="legacy", source={"existing": "legacy.img", "rename": True})["changed"]  # positive control


def test_an_object_already_managed_or_another_stores_is_refused(lab):
    volume_id = lab.volume(name="db", size=1)["volume"]["id"]
    before = state(lab)
    with pytest.raises(Conflict, match=f"is already volume 'db' \\({volume_id}\\) of this store") as caught:
        lab.volume(name="db2", source={"existing": f"volume-{volume_id}"})
    assert caught.value.option == "source.existing" and state(lab) == before

    lab.volume(name="db", state="absent", keep_storage=True)
    lab.driver.owner = {"id": "store-a", "store": "/state/a.json"}
    marker = os.path.join(lab.path, OWNER_MARKER)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "store-b", "store": "/state/b.json", "backend": "theirs"}))
    before = state(lab)
    with pytest.raises(Conflict, match=re.escape("belongs to another state store, '/state/b.json'")) as caught:
        lab.volume(name="db2", source={"existing": f"volume-{volume_id}"})
    assert caught.value.option == "source.existing" and state(lab) == before
    with open(marker, "w", encoding="utf-8") as handle:  # the positive control: this store's own marker
        handle.write(json.dumps({"id": "store-a", "store": "/state/a.json", "backend": "lab"}))
    assert lab.volume(name="db2", source={"existing": f"volume-{volume_id}"})["volume"]["id"] == volume_id


def test_check_mode_before_the_store_knows_the_backend_leaves_the_owner_to_the_real_run(lab):
    # No owner is known in check mode before this store's first task on the backend: its own marker is not
    # another store's (the real run claims the directory, and refuses there what is another store's).
    volume_id = lab.volume(name="db", size=1)["volume"]["id"]
    lab.volume(name="db", state="absent", keep_storage=True)
    with open(os.path.join(lab.path, OWNER_MARKER), "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "store-a", "store": "/state/a.json", "backend": "lab"}))
    lab.driver.owner = None
    planned = lab.volume(name="db2", source={"existing": f"volume-{volume_id}"}, check_mode=True)
    assert planned["changed"] and planned["volume"]["id"] == volume_id
    lab.driver.owner = {"id": "store-b", "store": "/state/b.json"}  # the negative control: known, and not its
    with pytest.raises(Conflict, match="belongs to another state store") as caught:
        lab.volume(name="db2", source={"existing": f"volume-{volume_id}"}, check_mode=True)
    assert caught.value.option == "source.existing"


def test_the_backend_format_decides_what_is_adopted(lab):
    os.makedirs(lab.path, exist_ok=True)
    if lab.format == "raw":  # a guest may have written a qcow2 header: its bytes stay data, adopted as raw
        path = os.path.join(lab.path, "looks-qcow2.img")
        subprocess.run(["qemu-img", "create", "-f", "qcow2", path, "1G"], check=True, capture_output=True)
        os.truncate(path, GiB)
        adopted = lab.volume(name="v", source={"existing": "looks-qcow2.img", "rename": True})
        assert adopted["volume"]["size"] == 1 and lab.record("volume", "v")["driver_data"]["format"] == "raw"
        return
    with open(os.path.join(lab.path, "plain.img"), "wb") as handle:
        handle.truncate(GiB)
    subprocess.run(["qemu-img", "create", "-f", "qcow2", os.path.join(lab.path, "base.qcow2"), "1G"], check=True,
                   capture_output=True)
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2",
                    os.path.join(lab.path, "top.qcow2")], check=True, capture_output=True)
    before = state(lab)
    with pytest.raises(DriverError, match="is not a qcow2 image") as caught:
        lab.volume(name="v", source={"existing": "plain.img", "rename": True})
    assert caught.value.option == "source.existing"
    with pytest.raises(DriverError, match=re.escape("is a qcow2 image on top of 'base.qcow2'")) as caught:
        lab.volume(name="v", source={"existing": "top.qcow2", "rename": True})
    assert caught.value.option == "source.existing" and state(lab) == before
    adopted = lab.volume(name="v", source={"existing": "base.qcow2", "rename": True})
    assert adopted["volume"]["size"] == 1 and lab.record("volume", "v")["driver_data"]["format"] == "qcow2"


def test_forget_is_refused_while_connected_and_with_snapshots_unless_cascade(lab):
    volume_id = lab.volume(name="db", size=1)["volume"]["id"]
    lab.run(AttachmentResource, volume="db", state="connected", connector={"host": "h1"})
    before = state(lab)
    for force in (False, True):
        with pytest.raises(Conflict, match="is connected to h1; detach it first") as caught:
            lab.volume(name="db", state="absent", keep_storage=True, force=force)
        assert caught.value.option == "keep_storage" and state(lab) == before
    lab.run(AttachmentResource, volume="db", state="detached", connector={"host": "h1"})

    snapshot_id = lab.snapshot(volume="db", name="s1")["snapshot"]["id"]
    before = state(lab)
    with pytest.raises(Conflict, match="has snapshots 's1'; set cascade: true to forget them") as caught:
        lab.volume(name="db", state="absent", keep_storage=True)
    assert caught.value.option == "cascade" and state(lab) == before
    files = lab.files()
    done = lab.volume(name="db", state="absent", keep_storage=True, cascade=True)
    assert done["actions"][0] == f"forget snapshot 's1' ({snapshot_id}), keeping its storage"
    assert lab.store.find("lab") == [] and lab.files() == files
    assert sorted(unknown(lab)) == sorted([volume_id, snapshot_id])
