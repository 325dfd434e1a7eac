# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_backup: the chunk format (pure, on a temp directory), the chain rules, and whole tasks on the
real file driver (raw and qcow2): full and incremental backups, restores compared byte for byte with what
the volume held, a corrupt chunk, deleting chains, check mode and re-runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import backup_chunks
from ansible_collections.blockstore.storage.plugins.module_utils import backups as backups_module
from ansible_collections.blockstore.storage.plugins.module_utils.backup_chunks import (
    BackupCorrupt,
    Repository,
    assemble,
    dependents,
    latest,
    store_image,
)
from ansible_collections.blockstore.storage.plugins.module_utils.backups import BackupInfo, BackupResource
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict, InvalidParameter, NotFound
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task
from ansible_collections.blockstore.storage.plugins.module_utils.objects import AVAILABLE, Backup
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.serialization import dumps, loads
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab as ResourceLab

CHUNK = 64 * 1024  # small chunks keep the pure tests fast


def _image(path, blocks: dict[int, bytes], chunks: int) -> None:
    with open(path, "wb") as out:
        out.truncate(chunks * CHUNK)
        for index, data in blocks.items():
            out.seek(index * CHUNK)
            out.write(data)


def _block(fill: int) -> bytes:
    return bytes([fill]) * CHUNK


# the chunk format -----------------------------------------------------------
def test_a_full_then_an_incremental_stores_only_the_changed_chunks(tmp_path):
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {0: _block(1), 3: _block(2), 5: _block(3)}, 8)
    full = store_image(repo, image, "full", None, CHUNK)
    assert (full.changed_chunks, full.written_chunks) == (3, 3)  # zero chunks are not stored
    assert full.manifest["chunks"][1] is None and full.manifest["chunks"][0] == hashlib.sha256(_block(1)).hexdigest()

    _image(image, {0: _block(1), 3: _block(9), 5: _block(3), 6: _block(4)}, 8)
    incr = store_image(repo, image, "incr", full.manifest, CHUNK)
    assert (incr.changed_chunks, incr.written_chunks) == (2, 2)  # chunk 3 changed, chunk 6 is new
    assert incr.manifest["parent_id"] == "full"
    assert len(os.listdir(tmp_path / "repo" / "manifests")) == 2

    again = store_image(repo, image, "same", incr.manifest, CHUNK)
    assert (again.changed_chunks, again.written_chunks) == (0, 0)


def test_assemble_gives_back_the_image_byte_for_byte(tmp_path):
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {1: _block(7), 2: os.urandom(CHUNK)}, 4)
    stored = store_image(repo, image, "b1", None, CHUNK)
    out = str(tmp_path / "out")
    assemble(repo, stored.manifest, out)
    with open(image, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("damage", ["altered", "missing", "garbage"])
def test_a_damaged_chunk_is_named_and_nothing_is_claimed_restored(tmp_path, damage):
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {0: _block(1), 2: _block(5)}, 3)
    stored = store_image(repo, image, "b1", None, CHUNK)
    path = repo.chunk_path(stored.manifest["chunks"][2])
    if damage == "missing":
        os.unlink(path)
    elif damage == "garbage":
        with open(path, "wb") as out:
            out.write(b"not zlib")
    else:
        import zlib
        with open(path, "wb") as out:
            out.write(zlib.compress(_block(6)))
    with pytest.raises(BackupCorrupt, match=r"backup chunk 2 \(.*\) (is missing|does not match|cannot be decomp)"):
        assemble(repo, stored.manifest, str(tmp_path / "out"))
    # positive control: the intact chunk 0 reads back
    assert repo.get_chunk(stored.manifest["chunks"][0], 0, CHUNK) == _block(1)


def test_a_manifest_whose_whole_image_checksum_differs_is_refused(tmp_path):
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {0: _block(1)}, 2)
    stored = store_image(repo, image, "b1", None, CHUNK)
    assemble(repo, stored.manifest, str(tmp_path / "ok"))  # positive control
    bad = dict(stored.manifest, sha256="0" * 64)
    with pytest.raises(BackupCorrupt, match="chunk list does not match the manifest's checksum of the whole image"):
        assemble(repo, bad, str(tmp_path / "out"))


def test_deleting_a_backup_keeps_the_chunks_other_backups_use(tmp_path):
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {0: _block(1), 1: _block(2)}, 2)
    first = store_image(repo, image, "first", None, CHUNK)
    _image(image, {0: _block(1), 1: _block(3)}, 2)
    second = store_image(repo, image, "second", first.manifest, CHUNK)
    assert repo.delete(["first"]) == 1  # only chunk 1 of the first backup was its own
    assert not os.path.exists(repo.manifest_path("first"))
    assemble(repo, second.manifest, str(tmp_path / "out"))  # the shared chunk 0 is still there
    assert repo.delete(["second"]) == 2
    assert not os.listdir(tmp_path / "repo" / "manifests")


def _backup(name, parent=None, created="2026-01-01T00:00:00+00:00", volume="v1", location="/b"):
    return Backup(id=name, name=name, backend="lab", volume_id=volume, volume_size=1, location=location,
                  parent_id=parent, status=AVAILABLE, created_at=created)


def test_a_delete_waits_for_a_backup_being_stored_in_the_same_location(tmp_path, monkeypatch):
    """Two tasks on backups of different volumes in one target: the delete must not remove a chunk that the
    backup being stored found there and reuses before the new manifest names it."""
    import threading
    repo = Repository(str(tmp_path / "repo"))
    repo.prepare()
    image = str(tmp_path / "image")
    _image(image, {0: _block(1), 2: _block(2)}, 4)
    store_image(repo, image, "old", None, CHUNK)
    paused, go = threading.Event(), threading.Event()
    write_manifest = Repository.write_manifest

    def slow_manifest(self, manifest):
        if manifest["backup_id"] == "new":
            paused.set()
            go.wait(10)
        write_manifest(self, manifest)

    monkeypatch.setattr(Repository, "write_manifest", slow_manifest)
    storing = threading.Thread(target=store_image, args=(Repository(repo.location), image, "new", None, CHUNK))
    storing.start()
    assert paused.wait(10)  # every chunk of "new" is there already: it stored none, its manifest comes next
    deleting = threading.Thread(target=Repository(repo.location).delete, args=(["old"],))
    deleting.start()
    deleting.join(1)
    go.set()
    storing.join(10)
    deleting.join(10)
    assert not storing.is_alive() and not deleting.is_alive()
    assert not os.path.exists(repo.manifest_path("old"))  # the delete was done
    out = str(tmp_path / "out")
    assemble(repo, repo.read_manifest("new"), out)  # every chunk of "new" is still there
    with open(image, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()


def test_chain_rules():
    chain = [_backup("full"), _backup("i1", "full", "2026-01-02T00:00:00+00:00"),
             _backup("i2", "i1", "2026-01-03T00:00:00+00:00"), _backup("other", created="2026-01-04T00:00:00+00:00",
                                                                       volume="v2")]
    assert [b.id for b in dependents(chain, "full")] == ["i2", "i1"]  # the deepest first
    assert dependents(chain, "i2") == []
    assert latest(chain, "v1", "/b").id == "i2"
    assert latest(chain, "v1", "/elsewhere") is None


def test_backup_records_round_trip_and_older_kinds_still_load():
    record = {"kind": "backup", "id": "b1", "backend": "lab", "name": "n", "volume_id": "v", "volume_size": 1,
              "location": "/b", "parent_id": None, "status": "available", "crash_consistent": False}
    assert loads(dumps([record]))["b1"]["location"] == "/b"
    volume = {"kind": "volume", "id": "v", "backend": "lab", "name": "v", "size": 1}
    assert set(loads(dumps([volume]))) == {"v"}
    with pytest.raises(Exception, match="field 'crash_consistent' must be true or false"):
        loads(dumps([dict(record, crash_consistent="yes")]))


# whole tasks on the real file driver -------------------------------------------
class Lab(ResourceLab):
    def __init__(self, path: str, fmt: str, target: str) -> None:
        super().__init__(path, fmt, MemoryStore())
        self.target = target

    def backup(self, **params) -> dict:
        return self.run(BackupResource, **params)

    def image(self, name: str) -> str:
        return os.path.join(self.path, f"volume-{self.record('volume', name)['id']}")

    def io(self, name: str, *ops: str) -> None:
        args = [a for op in ops for a in ("-c", op)]
        proc = subprocess.run(["qemu-io", "-f", self.format, *args, self.image(name)], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0 and "verification failed" not in proc.stdout + proc.stderr, proc

    def data(self, name: str) -> str:
        """What a user of the volume reads now, kept aside as a raw image (compared with `holds`)."""
        self.copies = getattr(self, "copies", 0) + 1
        out = os.path.join(os.path.dirname(self.path), f"copy-{self.copies}.raw")
        subprocess.run(["qemu-img", "convert", "-U", "-f", self.format, "-O", "raw", self.image(name), out],
                       check=True)
        return out

    def holds(self, name: str, copy: str) -> bool:
        """Whether the volume reads byte for byte as the kept `copy` (qemu-img compare: 0 same, 1 differs)."""
        proc = subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", self.format, copy, self.image(name)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode in (0, 1), proc
        return proc.returncode == 0

    def info(self, **params) -> list[dict]:
        task = Task(params=params, driver=self.driver, records=self.store.all_records())
        return BackupInfo.on_host(task)[0]["backups"]


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    made = Lab(str(tmp_path / "backend"), request.param, str(tmp_path / "backups"))
    made.volume(name="db", size=1)
    made.io("db", "write -P 0x11 0 1M", "write -P 0x12 8M 1M")
    return made


def test_full_incremental_restore_each_and_delete_the_chain(lab):
    at_full = lab.data("db")
    planned = lab.backup(name="full", volume="db", target=lab.target, check_mode=True)
    assert planned["changed"] and planned["backup"]["parent_id"] is None
    assert lab.store.find("lab", "backup") == [] and not os.path.exists(lab.target)  # check mode made nothing

    full = lab.backup(name="full", volume="db", target=lab.target)
    assert full["changed"] and full["backup"]["status"] == "available" and not full["backup"]["crash_consistent"]
    assert full["chunks"]["written_chunks"] == 2 and full["chunks"]["chunks"] == 256
    again = lab.backup(name="full", volume="db", target=lab.target)
    assert not again["changed"] and again["actions"] == []
    assert lab.store.find("lab", "snapshot") == [] and not [f for f in lab.files() if f.startswith("snapshot-")]

    lab.io("db", "write -P 0x22 8M 4K", "write -P 0x33 100M 1M")  # changes chunk 2 and makes chunk 25
    at_incr = lab.data("db")
    incr = lab.backup(name="incr", volume="db", target=lab.target, incremental=True)
    assert incr["backup"]["parent_id"] == full["backup"]["id"]
    assert incr["chunks"]["changed_chunks"] == 2 and incr["chunks"]["written_chunks"] == 2

    for name, expected in (("full", at_full), ("incr", at_incr)):
        done = lab.backup(name=name, state="restored", restore_to=f"from-{name}")
        assert done["changed"] and done["volume"]["status"] == "available" and done["volume"]["size"] == 1
        assert lab.holds(f"from-{name}", expected)
        assert not lab.backup(name=name, state="restored", restore_to=f"from-{name}")["changed"]
    assert [b["name"] for b in lab.info(volume="db")] == ["full", "incr"]

    with pytest.raises(Conflict, match=r"delete_dependents: incremental backup.* 'incr' depend on backup 'full'"):
        lab.backup(name="full", state="absent")
    assert len(lab.store.find("lab", "backup")) == 2  # refused, nothing deleted
    gone = lab.backup(name="full", state="absent", delete_dependents=True)
    assert gone["changed"] and [d["name"] for d in gone["deleted_dependents"]] == ["incr"]
    assert lab.store.find("lab", "backup") == []
    assert os.listdir(os.path.join(lab.target, "manifests")) == []
    assert [d for _r, _d, files in os.walk(os.path.join(lab.target, "chunks")) for d in files] == []


def test_a_corrupt_chunk_fails_the_restore_naming_it_and_leaves_no_volume(lab):
    lab.backup(name="full", volume="db", target=lab.target)
    repo = Repository(lab.target)
    manifest = repo.read_manifest(lab.record("backup", "full")["id"])
    digest = next(d for d in manifest["chunks"] if d)
    with open(repo.chunk_path(digest), "r+b") as chunk:
        chunk.seek(20)
        chunk.write(b"\xff\xff")
    volumes = lab.files()
    with pytest.raises(BackupCorrupt, match=r"backup chunk 0 \(.*\) (does not match|cannot be decompressed)"):
        lab.backup(name="full", state="restored", restore_to="copy")
    assert lab.record("volume", "copy") is None and lab.files() == volumes
    assert os.listdir(os.path.join(lab.target, "tmp")) == []


def test_restore_over_an_existing_volume_needs_force_and_checks_before_writing(lab):
    lab.backup(name="full", volume="db", target=lab.target)
    at_full = lab.data("db")
    lab.io("db", "write -P 0x44 0 2M")
    with pytest.raises(Conflict, match="force: volume 'db' exists"):
        lab.backup(name="full", state="restored", restore_to="db")
    assert not lab.holds("db", at_full)
    done = lab.backup(name="full", state="restored", restore_to="db", force=True)
    assert done["changed"] and lab.holds("db", at_full) and done["volume"]["status"] == "available"

    # A corrupt chunk stops before the volume is written: its data and status stay.
    lab.io("db", "write -P 0x55 0 1M")
    before = lab.data("db")
    manifest = Repository(lab.target).read_manifest(lab.record("backup", "full")["id"])
    os.unlink(Repository(lab.target).chunk_path(manifest["chunks"][2]))
    with pytest.raises(BackupCorrupt, match=r"backup chunk 2 .* is missing"):
        lab.backup(name="full", state="restored", restore_to="db", force=True)
    assert lab.holds("db", before) and lab.record("volume", "db")["status"] == "available"


def test_deleting_the_volume_keeps_its_backups_which_still_restore(lab):
    lab.backup(name="full", volume="db", target=lab.target)
    at_full = lab.data("db")
    lab.volume(name="db", state="absent")
    assert [b["name"] for b in lab.info(volume="db")] == ["full"]
    lab.backup(name="full", state="restored", restore_to="db2")
    assert lab.holds("db2", at_full)


def test_bad_input_names_the_option_and_changes_nothing(lab):
    state = lab.snapshot_of_state()
    with pytest.raises(InvalidParameter, match="incremental: no available backup of volume 'db'"):
        lab.backup(name="b", volume="db", target=lab.target, incremental=True)
    with pytest.raises(InvalidParameter, match="target: required"):
        lab.backup(name="b", volume="db")
    with pytest.raises(InvalidParameter, match="target: 'rel/dir' is not an absolute path"):
        lab.backup(name="b", volume="db", target="rel/dir")
    with pytest.raises(NotFound, match="volume: no volume 'nope'"):
        lab.backup(name="b", volume="nope", target=lab.target)
    with pytest.raises(NotFound, match=r"name: no backup 'b' .* to restore"):
        lab.backup(name="b", state="restored", restore_to="x")
    assert lab.snapshot_of_state() == state
    lab.backup(name="b", volume="db", target=lab.target)  # positive control
    with pytest.raises(InvalidParameter, match="restore_to: required"):
        lab.backup(name="b", state="restored")
    with pytest.raises(Conflict, match="target: backup 'b' exists in"):
        lab.backup(name="b", volume="db", target=lab.target + "2")


def test_a_connected_volume_backup_is_crash_consistent(lab, monkeypatch):
    # A connection record as an attachment leaves it (the attach itself is tested elsewhere).
    volume = lab.record("volume", "db")
    lab.store.apply(upserts=[{"kind": "connection", "id": "c1", "backend": "lab", "volume_id": volume["id"],
                              "host": "h1", "status": "attached", "connector": {}, "connection_info": {}}])
    done = lab.backup(name="live", volume="db", target=lab.target)
    assert done["backup"]["crash_consistent"] and "crash-consistent" in done["actions"][0]
    assert backup_chunks.CHUNK_SIZE == 4 * 1024 * 1024


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_driver_without_backups_is_refused_before_anything_is_made(tmp_path, monkeypatch, check_mode):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers.lvm import lvm as lvm_module
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
    from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.drivers.test_lvm_driver import (
        FakeLvm,
    )
    fake = FakeLvm()
    monkeypatch.setattr(lvm_module, "run", fake)
    lab = Lab(str(tmp_path / "backend"), "raw", str(tmp_path / "backups"))
    lab.driver = build_driver({"name": "lab", "driver": "lvm", "volume_group": "vg0"})
    lab.volume(name="db", size=1)
    made = fake.changes()
    with pytest.raises(DriverError, match="driver 'lvm' cannot back up or restore volumes") as caught:
        lab.backup(name="b", volume="db", target=lab.target, check_mode=check_mode)
    assert caught.value.option == "backend.driver"
    # no temporary snapshot (a thick one is as large as the volume), no directory, no record
    assert fake.changes() == made and not os.path.exists(lab.target) and lab.store.find("lab", "backup") == []
    # a restore (of a backup record from elsewhere) is refused before it makes its volume
    lab.store.apply(upserts=[{"kind": "backup", "id": "0e6c7a63-8d4e-4b6e-9d55-0c0a56a1a001", "backend": "lab",
                              "name": "old", "volume_id": "v", "volume_size": 1, "location": lab.target,
                              "status": "available"}])
    with pytest.raises(DriverError, match="driver 'lvm' cannot back up or restore volumes"):
        lab.backup(name="old", state="restored", restore_to="db2", check_mode=check_mode)
    assert fake.changes() == made and not os.path.exists(lab.target)
    # positive control: the same task on a file backend backs up into the same target
    lab.driver = build_driver({"name": "lab", "driver": "file", "path": lab.path, "format": "raw"})
    lab.store = MemoryStore()
    lab.volume(name="db", size=1)
    assert lab.backup(name="b", volume="db", target=lab.target, check_mode=check_mode)["changed"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the collection catches it."""


@pytest.mark.parametrize("killed", ["reading", "storing"])
def test_a_killed_backup_leaves_nothing_once_deleted_and_the_volume_deletes_clean(lab, monkeypatch, killed):
    at_start = lab.data("db")

    def dies(*_args):
        raise Killed()

    # Killed while reading the temporary snapshot, or once its chunks are stored but not its manifest; the
    # task's clean-up (its `finally`) never runs either.
    if killed == "reading":
        monkeypatch.setattr("ansible_collections.blockstore.storage.plugins.module_utils.backups.qemu_img", dies)
    else:
        monkeypatch.setattr(Repository, "write_manifest", dies)
    monkeypatch.setattr(lab.driver, "delete_snapshot", dies)
    with pytest.raises(Killed):
        lab.backup(name="b", volume="db", target=lab.target)
    monkeypatch.undo()
    assert lab.record("backup", "b")["status"] == "creating"
    with pytest.raises(Conflict, match="left in status creating"):
        lab.backup(name="b", volume="db", target=lab.target)
    done = lab.backup(name="b", state="absent")
    assert done["changed"] and lab.record("backup", "b") is None
    # the temporary snapshot the killed task took is gone with it, the volume's data is whole
    assert [f for f in lab.files() if not f.startswith("volume-")] == []
    assert [f for _r, _d, files in os.walk(os.path.join(lab.target, "chunks")) for f in files] == []
    assert lab.holds("db", at_start)
    # positive control: a backup runs again and restores the same data; the volume then deletes to nothing
    lab.backup(name="b", volume="db", target=lab.target)
    lab.backup(name="b", state="restored", restore_to="db2")
    assert lab.holds("db2", at_start)
    lab.volume(name="db", state="absent")
    lab.volume(name="db2", state="absent")
    assert lab.files() == []


@pytest.mark.parametrize("how", ["killed", "failed"])
def test_a_restore_over_a_volume_interrupted_midway_is_finished_by_running_it_again(lab, monkeypatch, how):
    lab.backup(name="full", volume="db", target=lab.target)
    at_full = lab.data("db")
    lab.io("db", "write -P 0x44 0 2M")
    write_into = backups_module._write_into

    def dies(driver, volume, raw, what, new=False):
        if how == "killed":
            raise Killed()
        write_into(driver, volume, "/nonexistent/image.raw", what, new)  # qemu-img fails midway

    monkeypatch.setattr(backups_module, "_write_into", dies)
    with pytest.raises(Killed if how == "killed" else Exception):
        lab.backup(name="full", state="restored", restore_to="db", force=True)
    monkeypatch.undo()
    assert lab.record("volume", "db")["status"] == "reverting"
    done = lab.backup(name="full", state="restored", restore_to="db", force=True)
    assert done["changed"] and done["volume"]["status"] == "available" and lab.holds("db", at_full)


def test_a_restore_to_a_new_volume_killed_midway_is_finished_by_running_it_again(lab, monkeypatch):
    lab.backup(name="full", volume="db", target=lab.target)
    at_full = lab.data("db")

    def dies(*_args, **_kwargs):
        raise Killed()

    monkeypatch.setattr(backups_module, "_write_into", dies)
    with pytest.raises(Killed):
        lab.backup(name="full", state="restored", restore_to="copy")
    monkeypatch.undo()
    assert lab.record("volume", "copy")["status"] == "creating"
    done = lab.backup(name="full", state="restored", restore_to="copy")
    assert done["changed"] and done["volume"]["status"] == "available" and lab.holds("copy", at_full)
    assert not lab.backup(name="full", state="restored", restore_to="copy")["changed"]
    # a volume of that name made otherwise is still refused without force
    lab.volume(name="other", size=1)
    with pytest.raises(Conflict, match="force: volume 'other' exists"):
        lab.backup(name="full", state="restored", restore_to="other")
