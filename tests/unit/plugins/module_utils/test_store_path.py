# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store path is handled safely: symlinks, devices, another user's file, options that would be ignored,
and temp files that belong to exactly one store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import uuid

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter, StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore


def volume(name: str, backend: str = "b1") -> dict:
    return {"kind": "volume", "id": str(uuid.uuid4()), "backend": backend, "name": name, "size": 1,
            "status": "available"}


def test_a_symlinked_state_path_writes_through_to_its_target(tmp_path):
    real = tmp_path / "real" / "state.json"
    real.parent.mkdir()
    link = tmp_path / "state.json"
    link.symlink_to(real)
    JsonFileStore(str(link)).apply(upserts=[volume("one")])
    JsonFileStore(str(link)).apply(upserts=[volume("two")])
    assert link.is_symlink() and os.readlink(link) == str(real)
    # The real file holds both records, whether opened through the link or directly: no split state.
    assert sorted(r["name"] for r in JsonFileStore(str(real)).all_records()) == ["one", "two"]
    assert sorted(r["name"] for r in JsonFileStore(str(link)).all_records()) == ["one", "two"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a device node")
def test_a_character_device_is_refused_and_left_alone(tmp_path):
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    store = open_store({"storage": "file", "path": str(device)})
    for operation in (lambda: store.apply(upserts=[volume("one")]), lambda: store.find("b1", "volume")):
        with pytest.raises(StateStoreError, match=f"persistence.path: {device} is a character device, not a "
                                                  "state file") as error:
            operation()
        assert error.value.option == "persistence.path"
    assert stat.S_ISCHR(os.lstat(device).st_mode) and sorted(os.listdir(tmp_path)) == ["null"]


def test_a_fifo_is_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    store = open_store({"storage": "file", "path": str(fifo)})

    def hung(_signum, _frame):
        raise TimeoutError("reading the FIFO blocked")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)  # a store that opens the FIFO blocks for ever
    try:
        with pytest.raises(StateStoreError, match="is a FIFO, not a state file"):
            store.apply(upserts=[volume("one")])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # Positive control: a new path in the same directory is a store.
    other = open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    other.apply(upserts=[volume("one")])
    assert [r["name"] for r in other.all_records()] == ["one"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_another_users_state_file_keeps_its_owner_and_group(tmp_path):
    path = tmp_path / "state.json"
    JsonFileStore(str(path)).apply(upserts=[volume("one")])
    os.chown(path, 65534, 65533)
    JsonFileStore(str(path)).apply(upserts=[volume("two")])
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65533, 0o600)
    assert sorted(r["name"] for r in JsonFileStore(str(path)).all_records()) == ["one", "two"]
    # Positive control: root's own file stays root's.
    own = tmp_path / "own.json"
    JsonFileStore(str(own)).apply(upserts=[volume("one")])
    JsonFileStore(str(own)).apply(upserts=[volume("two")])
    assert (own.stat().st_uid, own.stat().st_gid) == (0, 0)


@pytest.mark.parametrize("persistence, option, message", [
    ({"path": ""}, "persistence.path", "'' is not a file path"),
    ({"storage": "file", "connection": "sqlite:///{tmp}/s.db"}, "persistence.connection",
     "storage 'file' uses persistence.path, not a connection URL"),
    ({"storage": "db", "connection": "sqlite:///{tmp}/s.db", "path": "{tmp}/s.json"}, "persistence.path",
     "storage 'db' does not use a path"),
    ({"connection": "sqlite://"}, "persistence.connection", "in-memory SQLite database keeps nothing"),
    ({"connection": "sqlite:///:memory:"}, "persistence.connection", "in-memory SQLite database keeps nothing"),
    ({"connection": "sqlite:///file:x?mode=memory&uri=true"}, "persistence.connection", "in-memory SQLite"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, monkeypatch, persistence, option, message):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BLOCKSTORE_STATE_PATH", raising=False)
    monkeypatch.delenv("BLOCKSTORE_STATE_URL", raising=False)
    persistence = {k: v.replace("{tmp}", str(tmp_path)) for k, v in persistence.items()}
    with pytest.raises(InvalidParameter, match=message) as error:
        open_store(persistence)
    assert error.value.option == option
    assert os.listdir(tmp_path) == []
    # Positive controls: the default store, and a SQLite file.
    assert open_store({}).path == str(tmp_path / ".ansible" / "blockstore" / "state.json")
    pytest.importorskip("sqlalchemy")
    open_store({"connection": f"sqlite:///{tmp_path}/s.db"}).close()


WRITES = 150


def _write_many(path: str, failures) -> None:
    store = JsonFileStore(path)
    for i in range(WRITES):
        try:
            store.apply(upserts=[volume(f"v{i}")])
        except StateStoreError:
            failures.value += 1


def test_stores_whose_names_share_a_prefix_never_take_each_others_temp_files(tmp_path):
    ctx = multiprocessing.get_context("fork")
    failures = ctx.Value("i", 0)
    paths = [str(tmp_path / "state.json"), str(tmp_path / "state.json-b"), str(tmp_path / "state.json.b")]
    workers = [ctx.Process(target=_write_many, args=(p, failures)) for p in paths]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert failures.value == 0
    assert [len(JsonFileStore(p).all_records()) for p in paths] == [WRITES] * len(paths)
    assert not [n for n in os.listdir(tmp_path) if n.endswith("-tmp")]
