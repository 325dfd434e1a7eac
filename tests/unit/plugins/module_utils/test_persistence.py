# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state stores' contract, run against every store: memory, JSON file, SQLite and PostgreSQL.

PostgreSQL tests run when BLOCKSTORE_TEST_PG_URL names a server (scripts/test.sh starts one
with tests/utils/postgres.sh); each test works in a schema of its own, so runs can share a server.
Concurrency tests use real processes, as Ansible's forks are.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import socket
import sqlite3
import stat
import sys
import time
import traceback
import uuid

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import serialization
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    InvalidParameter,
    MissingDependency,
    StateStoreError,
)
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import normalize, open_store
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.base import Store, stripe_of
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore

sa = pytest.importorskip("sqlalchemy")
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import db  # noqa: E402
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.db import DbStore  # noqa: E402

PG_URL = os.environ.get("BLOCKSTORE_TEST_PG_URL")
STORES = ["memory", "jsonfile", "sqlite", "postgresql"]
SHARED_STORES = ["jsonfile", "sqlite", "postgresql"]  # seen by several processes
FORK = multiprocessing.get_context("fork")
WORKERS = 20


# --- stores under test -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Spec:
    """Where a store lives; each process opens its own store from it."""

    kind: str
    location: str = ""

    def open(self) -> Store:
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "jsonfile":
            return JsonFileStore(self.location)
        return DbStore(self.location)


def _pg_schema_url(base: str, schema: str) -> str:
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_url():
    """A fresh, empty schema on the test server: a store URL whose tables do not exist yet."""
    if not PG_URL:
        pytest.skip("BLOCKSTORE_TEST_PG_URL is not set (scripts/test.sh starts a PostgreSQL and sets it)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield _pg_schema_url(PG_URL, schema)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def _spec(kind: str, tmp_path, request) -> Spec:
    if kind == "jsonfile":
        return Spec(kind, str(tmp_path / "state" / "state.json"))
    if kind == "sqlite":
        return Spec(kind, f"sqlite:///{tmp_path}/state/state.db")
    if kind == "postgresql":
        return Spec(kind, request.getfixturevalue("pg_url"))
    return Spec(kind)


@pytest.fixture(params=STORES)
def spec(request, tmp_path) -> Spec:
    return _spec(request.param, tmp_path, request)


@pytest.fixture(params=SHARED_STORES)
def shared_spec(request, tmp_path) -> Spec:
    return _spec(request.param, tmp_path, request)


@pytest.fixture
def store(spec):
    opened = spec.open()
    yield opened
    opened.close()


def volume(name: str = "vol", backend: str = "b1", **fields) -> dict:
    record = {"kind": "volume", "id": str(uuid.uuid4()), "backend": backend, "name": name, "size": 1,
              "status": "available", "metadata": {}}
    record.update(fields)
    return record


def snapshot(vol: dict, name: str = "snap", **fields) -> dict:
    record = {"kind": "snapshot", "id": str(uuid.uuid4()), "backend": vol["backend"], "name": name,
              "volume_id": vol["id"], "volume_size": vol["size"], "status": "available"}
    record.update(fields)
    return record


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


# --- the contract ------------------------------------------------------------------------------

def test_empty_store_finds_nothing(store):
    assert store.find("b1") == []
    assert store.find("b1", "volume", name="x") == []
    assert store.all_records() == []


def test_find_filters_on_backend_kind_and_fields(store):
    v1 = volume("data1", size=10, metadata={"team": "a"})
    v2 = volume("data2", status="creating")
    other_backend = volume("data1", backend="b2")
    s1 = snapshot(v1, "before-upgrade")
    s2 = snapshot(v2, "nightly", status="error")
    store.apply(upserts=[v1, v2, other_backend, s1, s2])

    assert by_id(store.find("b1", "volume")) == by_id([v1, v2])
    assert by_id(store.find("b1")) == by_id([v1, v2, s1, s2])
    assert store.find("b1", "volume", name="data1") == [v1]
    assert store.find("b2", "volume", name="data1") == [other_backend]
    assert store.find("b1", "volume", id=v2["id"]) == [v2]
    assert store.find("b1", "snapshot", id=v2["id"]) == []  # right id, wrong kind
    assert store.find("b2", "volume", id=v1["id"]) == []  # right id, wrong backend
    assert store.find("b1", "snapshot", volume_id=v1["id"]) == [s1]
    assert store.find("b1", "volume", status="creating") == [v2]
    assert store.find("b1", "snapshot", status="error", volume_id=v2["id"]) == [s2]
    assert store.find("b1", "snapshot", status="available", volume_id=v2["id"]) == []
    # None means "any", as the modules pass unset filters.
    assert by_id(store.find("b1", "volume", name=None, id=None, status=None)) == by_id([v1, v2])
    assert store.find("nope", "volume") == []


def test_records_come_back_whole_and_as_copies(store):
    record = volume("data1", metadata={"nested": {"list": [1, 2, {"x": None}]}, "unicode": "é✓"},
                    driver_data={"format": "qcow2"}, description="d" * 2000)
    store.apply(upserts=[record])
    found = store.find("b1", "volume", name="data1")
    assert found == [record]
    found[0]["metadata"]["nested"]["list"].append(3)
    found[0]["name"] = "changed"
    assert store.find("b1", "volume", id=record["id"]) == [record]


def test_upsert_replaces_the_whole_record_and_its_lookup_fields(store):
    record = volume("old-name", description="gone after the update", status="creating")
    store.apply(upserts=[record])
    updated = {k: v for k, v in record.items() if k != "description"}
    updated.update(name="new-name", status="available", size=20)
    store.apply(upserts=[updated])
    assert store.find("b1", "volume", id=record["id"]) == [updated]
    assert store.find("b1", "volume", name="old-name") == []
    assert store.find("b1", "volume", status="creating") == []
    assert store.find("b1", "volume", name="new-name", status="available") == [updated]


def test_apply_merges_only_the_records_it_names(store):
    keep, change, drop = volume("keep"), volume("change"), volume("drop")
    store.apply(upserts=[keep, change, drop])
    changed = dict(change, size=5)
    added = volume("added")
    store.apply(upserts=[changed, added], deletes=[{"kind": "volume", "id": drop["id"]}])
    assert by_id(store.all_records()) == by_id([keep, changed, added])


def test_delete_of_a_missing_record_and_empty_apply_are_no_ops(store):
    record = volume()
    store.apply(upserts=[record])
    store.apply(deletes=[{"kind": "volume", "id": str(uuid.uuid4())}])
    store.apply()
    store.apply(upserts=[], deletes=[])
    assert store.all_records() == [record]


def test_an_id_given_twice_in_one_apply_keeps_the_last(store):
    record = volume("first")
    store.apply(upserts=[record, dict(record, name="second")])
    assert store.find("b1", "volume", id=record["id"]) == [dict(record, name="second")]


def test_upsert_and_delete_of_the_same_record_deletes_it(store):
    record = volume()
    store.apply(upserts=[record])
    store.apply(upserts=[dict(record, size=9)], deletes=[{"kind": "volume", "id": record["id"]}])
    assert store.all_records() == []


def test_records_that_would_corrupt_the_store_are_refused_before_writing(store):
    kept = volume("kept")
    store.apply(upserts=[kept])
    for bad, message in [({"kind": "volume", "id": str(uuid.uuid4())}, "lacks backend"),
                         (volume(kind="pool"), "unknown record kind"),
                         ("not a record", "must be a JSON object")]:
        with pytest.raises(StateStoreError, match=message):
            store.apply(upserts=[volume("good"), bad])
    assert store.all_records() == [kept]


def test_names_may_repeat_find_returns_them_all(store):
    # Names are unique per backend by the planner's rules; an imported or hand-edited
    # store may still hold two, and lookups must see both to ask for the id.
    first, second = volume("twin"), volume("twin")
    store.apply(upserts=[first, second])
    assert by_id(store.find("b1", "volume", name="twin")) == by_id([first, second])


def test_locked_is_reentrant_free_and_accepts_no_keys(store):
    with store.locked([]):
        store.apply(upserts=[volume("a")])
    with store.locked(["b1:volume:name:a", "b1:volume:name:a", "b1:volume:id:x"]):
        assert len(store.find("b1", "volume", name="a")) == 1


def test_records_outlive_the_store_object(shared_spec):
    first = shared_spec.open()
    record = volume("kept")
    first.apply(upserts=[record])
    first.close()
    second = shared_spec.open()
    try:
        assert second.find("b1", "volume", name="kept") == [record]
    finally:
        second.close()


def test_open_store_builds_each_store_from_the_persistence_option(tmp_path):
    memory = open_store({"storage": "memory"})
    assert isinstance(memory, MemoryStore)
    state = tmp_path / "s.json"
    assert isinstance(open_store({"path": str(state)}), JsonFileStore)
    sqlite = open_store({"connection": f"sqlite:///{tmp_path}/s.db"})
    try:
        assert isinstance(sqlite, DbStore)
        assert normalize({"connection": "sqlite:///x.db"})["storage"] == "db"
    finally:
        sqlite.close()


def test_a_record_is_found_by_its_id_whatever_its_backend_and_an_unknown_id_is_none(store):
    # How ids are kept unique across a store: an upsert asks who holds its id.
    first, other = volume(name="a"), volume(name="b", backend="b2")
    store.apply(upserts=[first, other])
    assert store.by_id(other["id"]) == other and store.by_id(first["id"]) == first
    assert store.by_id(str(uuid.uuid4())) is None


# --- the JSON state file -----------------------------------------------------------------------

def test_state_file_is_written_whole_with_mode_0600(tmp_path):
    path = tmp_path / "deep" / "state.json"
    store = JsonFileStore(str(path))
    record = volume()
    store.apply(upserts=[record])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert serialization.loads(path.read_text()) == {record["id"]: record}
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(("lock", ".locks"))) == [
        "state.json"]  # no temp file left behind


def test_a_killed_writers_temp_file_goes_with_the_next_write_and_another_stores_stays(tmp_path):
    path = tmp_path / "state.json"
    store = JsonFileStore(str(path))
    store.apply(upserts=[volume()])
    killed = tmp_path / ".state.json.ab12cd_9.blockstore-tmp"  # what mkstemp named it before the kill
    other = tmp_path / ".state.json.x.ab12cd_9.blockstore-tmp"  # state.json.x's, whose writer may be at work
    killed.write_text("half")
    other.write_text("half")
    store.apply(upserts=[volume(id="00000000-0000-4000-8000-000000000002", name="v2")])
    assert not killed.exists() and other.read_text() == "half"
    assert len(store.all_records()) == 2


def test_state_file_mode_stays_0600_over_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        store = JsonFileStore(str(tmp_path / "state.json"))
        store.apply(upserts=[volume()])
        store.apply(upserts=[volume()])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600


def test_state_directory_and_lock_files_are_private_over_a_permissive_umask(tmp_path):
    # Records carry sealed secrets and the lock files name the resources: nobody else may read or create them.
    path = tmp_path / "state" / "state.json"
    old = os.umask(0)
    try:
        store = JsonFileStore(str(path))
        with store.locked(["volume:data"]):
            store.apply(upserts=[volume()])
    finally:
        os.umask(old)
    locks = path.parent / "state.json.locks"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700
    lock_files = [path.parent / "state.json.lock", *locks.iterdir()]
    assert len(lock_files) == 2
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in lock_files} == {p.name: 0o600 for p in lock_files}


def test_a_lock_the_filesystem_refuses_fails_the_write_at_once(tmp_path, monkeypatch):
    # An NFS mount without its lock daemon answers ENOLCK: the task must fail, not retry for ever.
    import errno

    from ansible_collections.blockstore.storage.plugins.module_utils.persistence import base
    calls = []

    def flock(fd, operation):
        calls.append(operation)
        if len(calls) > 1:
            raise AssertionError("a refused lock was asked for again")
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(base.fcntl, "flock", flock)
    store = JsonFileStore(str(tmp_path / "state.json"))
    with pytest.raises(OSError) as error:
        store.apply(upserts=[volume()])
    assert error.value.errno == errno.ENOLCK and len(calls) == 1
    assert not (tmp_path / "state.json").exists()


def test_lock_files_are_bounded_whatever_the_number_of_resources(tmp_path):
    # Lock files are never removed (an flock on a replaced file excludes nobody): their number must stay
    # bounded (1024 stripes) however many volumes a store has seen.
    store = JsonFileStore(str(tmp_path / "state.json"))
    for n in range(3000):
        with store.locked([f"b1:volume:name:v{n}"]):
            pass
    names = [p.name for p in (tmp_path / "state.json.locks").iterdir()]
    assert 900 < len(names) <= 1024
    assert all(0 <= int(name.removeprefix("resource-").removesuffix(".lock")) < 1024 for name in names)


BAD_STATE_FILES = {
    "corrupt": (b"{this is not json", "not valid JSON"),
    "truncated": (serialization.dumps([volume()]).encode()[:-20], "not valid JSON"),
    "newer schema": (b'{"schema_version": 99, "records": {}}', "newer blockstore.storage"),
    "not a state document": (b'{"volumes": []}', "not a blockstore state document"),
    "record without its id": (b'{"schema_version": 1, "records": {"x": {"kind": "volume"}}}', "lacks id"),
    "binary": (b"\xff\xfe\x00garbage", "state.json: 'utf-8' codec can't decode"),
}


@pytest.mark.parametrize("case", sorted(BAD_STATE_FILES))
def test_bad_state_file_is_refused_and_never_overwritten(tmp_path, case):
    content, message = BAD_STATE_FILES[case]
    path = tmp_path / "state.json"
    path.write_bytes(content)
    store = JsonFileStore(str(path))
    for operation in (lambda: store.find("b1", "volume", name="x"),
                      store.all_records,
                      lambda: store.apply(upserts=[volume()]),
                      lambda: store.apply(deletes=[{"kind": "volume", "id": str(uuid.uuid4())}])):
        with pytest.raises(StateStoreError) as error:
            operation()
        assert message in str(error.value)
        assert str(path) in str(error.value)
    assert path.read_bytes() == content


def test_unreadable_state_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "state.json"
    path.mkdir()  # reading fails even for root, whom permission bits do not stop
    store = JsonFileStore(str(path))
    with pytest.raises(StateStoreError, match="is a directory, not a state file"):
        store.find("b1", "volume")
    with pytest.raises(StateStoreError, match="is a directory, not a state file"):
        store.apply(upserts=[volume()])
    assert path.is_dir() and list(path.iterdir()) == []


@pytest.mark.non_root  # root reads files whatever their mode
def test_state_file_without_read_permission_is_refused(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(serialization.dumps([]))
    path.chmod(0)
    with pytest.raises(StateStoreError, match="Permission denied"):
        JsonFileStore(str(path)).find("b1")


def test_state_file_in_an_unwritable_place_fails_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = JsonFileStore(str(blocker / "state.json"))  # a directory that is a file
    with pytest.raises(StateStoreError, match="persistence"):
        store.apply(upserts=[volume()])


def test_empty_state_file_reads_as_an_empty_store(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("")
    store = JsonFileStore(str(path))
    assert store.all_records() == []
    store.apply(upserts=[volume()])
    assert len(store.all_records()) == 1


# --- the database store ------------------------------------------------------------------------

@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/db/state.db"


def test_sqlite_database_is_private_and_in_wal_mode(tmp_path, sqlite_url):
    store = DbStore(sqlite_url)
    store.apply(upserts=[volume()])
    store.close()
    path = tmp_path / "db" / "state.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    import sqlite3
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_relative_path_is_resolved_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = DbStore("sqlite:///relative.db")
    store.apply(upserts=[volume("r")])
    monkeypatch.chdir("/")
    assert store.find("b1", "volume", name="r")
    store.close()
    assert (tmp_path / "relative.db").exists()


def test_sqlite_in_memory_works_within_one_process():
    store = DbStore("sqlite://")
    record = volume()
    store.apply(upserts=[record])
    with store.locked(["k"]):
        assert store.all_records() == [record]
    store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_every_lookup_uses_an_index(engine, tmp_path, request):
    """The db store's cost per task must not grow with the number of records."""
    url = f"sqlite:///{tmp_path}/idx.db" if engine == "sqlite" else request.getfixturevalue("pg_url")
    store = DbStore(url)
    try:
        vol = volume()
        lookups = [
            ("b1", "volume", {}), ("b1", None, {}), ("b1", "volume", {"id": vol["id"]}),
            ("b1", "volume", {"name": "x"}), ("b1", "snapshot", {"volume_id": vol["id"]}),
            ("b1", "volume", {"status": "available"}), ("b1", "snapshot", {"name": "s", "volume_id": vol["id"]}),
            ("b1", "connection", {"volume_id": vol["id"]}),
        ]
        with store.engine.connect() as conn:
            if engine == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: make the planner show its choice
            for backend, kind, filters in lookups:
                query, unindexed = store.find_query(backend, kind, filters)
                assert unindexed == {}
                sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
                if engine == "sqlite":
                    plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                    assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan, (filters, plan)
                    assert "SCAN" not in plan, (filters, plan)
                else:
                    plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
                    assert "Index" in plan and "Seq Scan" not in plan, (filters, plan)
    finally:
        store.close()


def test_sqlite_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "state.db"
    content = b"this is a text file, not SQLite\n" * 200
    path.write_bytes(content)
    with pytest.raises(StateStoreError) as error:
        DbStore(f"sqlite:///{path}")
    assert "not a readable SQLite database" in str(error.value)
    assert error.value.option == "persistence.connection"
    assert path.read_bytes() == content


def _bump_schema(url: str, version: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE blockstore_meta SET value = '{version}' WHERE key = 'schema_version'")
    engine.dispose()


def test_sqlite_database_from_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    store = DbStore(url)
    store.apply(upserts=[volume()])
    store.close()
    _bump_schema(url, "99")
    content = path.read_bytes()
    with pytest.raises(StateStoreError) as error:
        DbStore(url)
    assert "newer blockstore.storage (schema 99" in str(error.value)
    assert "left untouched" in str(error.value)
    assert path.read_bytes() == content


def test_sqlite_truncated_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    store = DbStore(url)
    store.apply(upserts=[volume(f"v{i}", description="x" * 500) for i in range(200)])
    store.close()
    content = path.read_bytes()[:len(path.read_bytes()) // 2]
    path.write_bytes(content)
    with pytest.raises(StateStoreError) as error:
        reopened = DbStore(url)
        try:
            reopened.all_records()
        finally:
            reopened.close()
    assert "persistence.connection" in str(error.value)
    assert path.read_bytes() == content


def test_unreadable_sqlite_path_is_refused(tmp_path):
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StateStoreError, match="cannot open the SQLite database"):
        DbStore(f"sqlite:///{tmp_path}/state.db")


def test_corrupt_record_in_the_database_is_reported_with_its_id(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    store = DbStore(url)
    record = volume("v")
    store.apply(upserts=[record])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE blockstore_records SET data = '{broken'")
    engine.dispose()
    with pytest.raises(StateStoreError, match=f"record '{record['id']}': not valid JSON"):
        store.find("b1", "volume", name="v")
    store.close()


def test_postgresql_database_from_a_newer_schema_is_refused_and_left_untouched(pg_url):
    store = DbStore(pg_url)
    record = volume()
    store.apply(upserts=[record])
    store.close()
    _bump_schema(pg_url, "99")
    with pytest.raises(StateStoreError, match=r"newer blockstore\.storage") as error:
        DbStore(pg_url)
    assert error.value.option == "persistence.connection"
    _bump_schema(pg_url, str(serialization.SCHEMA_VERSION))
    reopened = DbStore(pg_url)
    assert reopened.all_records() == [record]
    reopened.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_clear_connection_error(error: pytest.ExceptionInfo, password: str) -> None:
    text = str(error.value)
    assert error.value.option == "persistence.connection"
    assert text.startswith("persistence.connection: ")
    assert password not in text
    assert password not in repr(error.value.args)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_unreachable_database_fails_clearly_without_the_password():
    password = "S3cret-p4ss"
    url = f"postgresql+psycopg://blockstore:{password}@127.0.0.1:{_closed_port()}/blockstore"
    with pytest.raises(StateStoreError) as error:
        DbStore(url)
    _assert_clear_connection_error(error, password)
    assert "cannot connect to the database" in str(error.value)
    assert "blockstore:***@127.0.0.1" in str(error.value)
    assert "Connection refused" in str(error.value)


@pytest.mark.parametrize("key", ["password", "sslpassword"])
def test_a_password_in_the_query_string_is_masked_when_the_database_is_unreachable(key):
    password = "Qu3ry-S3cret"
    url = f"postgresql+psycopg://blockstore@127.0.0.1:{_closed_port()}/blockstore?{key}={password}&connect_timeout=2"
    with pytest.raises(StateStoreError) as error:
        DbStore(url)
    _assert_clear_connection_error(error, password)
    # Positive control: the rest of the URL is shown, the secret masked in place.
    assert "@127.0.0.1:" in str(error.value) and f"{key}=***" in str(error.value)
    assert "connect_timeout=2" in str(error.value)


def test_a_password_in_the_query_string_is_masked_when_the_database_is_unsupported():
    password = "Qu3ry-S3cret"
    with pytest.raises(InvalidParameter) as error:
        DbStore(f"mysql://blockstore@127.0.0.1/blockstore?password={password}&charset=utf8")
    assert password not in str(error.value)
    assert "database 'mysql' is not supported" in str(error.value) and "password=***" in str(error.value)
    assert "charset=utf8" in str(error.value)


def test_silent_database_fails_after_the_connect_timeout(monkeypatch):
    """A host that accepts the connection but never answers must not hang the play."""
    monkeypatch.setattr(db, "CONNECT_TIMEOUT", 2)  # libpq's smallest
    password = "S3cret-p4ss"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(StateStoreError) as error:
            DbStore(f"postgresql+psycopg://blockstore:{password}@127.0.0.1:{port}/blockstore")
    _assert_clear_connection_error(error, password)
    assert "timeout" in str(error.value).lower()


def test_refused_password_fails_clearly_without_the_password(pg_url):
    password = "wrong-S3cret"
    url = sa.engine.make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    with pytest.raises(StateStoreError) as error:
        DbStore(url)
    _assert_clear_connection_error(error, password)
    assert "password authentication failed" in str(error.value)


def test_missing_database_fails_clearly(pg_url):
    url = sa.engine.make_url(pg_url).set(database="no_such_db").render_as_string(hide_password=False)
    with pytest.raises(StateStoreError, match='database "no_such_db" does not exist') as error:
        DbStore(url)
    _assert_clear_connection_error(error, sa.engine.make_url(pg_url).password)


@pytest.mark.parametrize("url, message", [
    ("not a url S3cret-p4ss", "not a valid SQLAlchemy URL"),
    ("mysql://root:S3cret-p4ss@db/state", "database 'mysql' is not supported"),
    ("oracle+cx://root:S3cret-p4ss@db/state", "database 'oracle' is not supported"),
    ("postgresql+nosuchdriver://root:S3cret-p4ss@db/state", "no SQLAlchemy dialect"),
    ("sqlite:////tmp/x.db?timeout=soon", "timeout in sqlite:////tmp/x.db?timeout=soon must be a number"),
])
def test_bad_url_is_refused_without_the_password(url, message):
    with pytest.raises(InvalidParameter) as error:
        DbStore(url)
    assert message in str(error.value)
    assert "S3cret-p4ss" not in str(error.value)
    assert error.value.option == "persistence.connection"


def test_missing_sqlalchemy_names_the_pip_package(monkeypatch, tmp_path):
    monkeypatch.setattr(db, "sa", None)
    with pytest.raises(MissingDependency) as error:
        DbStore(f"sqlite:///{tmp_path}/s.db")
    assert "pip install 'sqlalchemy" in str(error.value)
    assert error.value.library == "sqlalchemy"
    assert error.value.option == "persistence.connection"


def test_missing_psycopg_names_the_pip_package(monkeypatch):
    for name in [m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(MissingDependency) as error:
        DbStore("postgresql+psycopg://u:S3cret-p4ss@127.0.0.1:1/db")
    assert "pip install 'psycopg[binary]'" in str(error.value)
    assert "S3cret-p4ss" not in str(error.value)
    assert error.value.library == "psycopg"


def test_psycopg_without_a_part_it_needs_names_the_pip_package(monkeypatch):
    # psycopg is there but one of its own modules cannot be imported (a broken or partial install):
    # the fix is the same pip command.
    for name in [m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg.pq", None)  # import psycopg.pq now fails
    with pytest.raises(MissingDependency) as error:
        DbStore("postgresql+psycopg://u:S3cret-p4ss@127.0.0.1:1/db")
    assert "pip install 'psycopg[binary]'" in str(error.value)
    assert error.value.library == "psycopg"


def test_plain_postgresql_url_uses_psycopg():
    assert DbStore._parse("postgresql://u:p@h/d").drivername == "postgresql+psycopg"
    assert DbStore._parse("postgres://u:p@h/d").drivername == "postgresql+psycopg"


def test_importing_the_stores_does_not_import_sqlalchemy(tmp_path):
    """SQLAlchemy costs ~200 ms per task; only the db store may load it."""
    code = (
        "import sys\n"
        "from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store\n"
        f"store = open_store({{'path': {str(tmp_path / 's.json')!r}}})\n"
        "store.apply(upserts=[{'kind': 'volume', 'id': 'x', 'backend': 'b', 'name': 'x', 'size': 1}])\n"
        "open_store({'storage': 'memory'}).find('b')\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    import subprocess
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# --- many processes at once --------------------------------------------------------------------

def _run_processes(target, args_list, tmp_path) -> None:
    """Run target(*args) in one process each; fail with the children's tracebacks."""
    processes = []
    for index, args in enumerate(args_list):
        process = FORK.Process(target=_child, args=(target, args, str(tmp_path / f"child-{index}.err")))
        process.start()
        processes.append(process)
    for process in processes:
        process.join(120)
    errors = [p.read_text() for p in sorted(tmp_path.glob("child-*.err"))]
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _child(target, args, error_file) -> None:
    try:
        target(*args)
    except BaseException:
        with open(error_file, "w") as handle:
            handle.write(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def _create_own_record(spec: Spec, index: int, barrier) -> None:
    barrier.wait(60)  # every process opens the (not yet created) store at once
    store = spec.open()
    key = f"b1:volume:name:vol-{index}"
    with store.locked([key]):
        store.apply(upserts=[volume(f"vol-{index}")])
    store.close()


def test_twenty_processes_each_creating_a_record_lose_none(shared_spec, tmp_path):
    barrier = FORK.Barrier(WORKERS)
    _run_processes(_create_own_record, [(shared_spec, i, barrier) for i in range(WORKERS)], tmp_path)
    store = shared_spec.open()
    names = sorted(r["name"] for r in store.all_records())
    store.close()
    assert names == sorted(f"vol-{i}" for i in range(WORKERS))


COUNTER = {"kind": "volume", "id": "00000000-0000-4000-8000-000000000001", "backend": "b1", "name": "counter",
           "size": 1, "status": "available", "metadata": {"count": 0}}
INCREMENTS = 3


def _increment(spec: Spec, barrier) -> None:
    barrier.wait(60)
    store = spec.open()
    for _round in range(INCREMENTS):
        with store.locked(["b1:volume:name:counter"]):
            record = store.find("b1", "volume", id=COUNTER["id"])[0]
            time.sleep(0.002)  # widen the read-modify-write window a lost update would need
            record["metadata"]["count"] += 1
            store.apply(upserts=[record])
    store.close()


def test_same_key_lock_excludes_across_processes(shared_spec, tmp_path):
    store = shared_spec.open()
    store.apply(upserts=[COUNTER])
    store.close()
    barrier = FORK.Barrier(WORKERS)
    _run_processes(_increment, [(shared_spec, barrier)] * WORKERS, tmp_path)
    store = shared_spec.open()
    assert store.find("b1", "volume", id=COUNTER["id"])[0]["metadata"]["count"] == WORKERS * INCREMENTS
    store.close()


def _distinct_stripe_keys() -> tuple[str, str]:
    first = "b1:volume:name:left"
    second = next(f"b1:volume:name:right-{i}" for i in range(100) if stripe_of(f"b1:volume:name:right-{i}")
                  != stripe_of(first))
    return first, second


def _hold_and_wait_for_other(spec: Spec, key: str, mine, others) -> None:
    store = spec.open()
    with store.locked([key]):
        mine.set()
        # Both holders must be inside their locks at the same time: different keys do not wait.
        if not others.wait(60):
            raise AssertionError(f"the task holding {key!r} never saw the other task take its own key")
    store.close()


def test_different_keys_are_held_at_the_same_time(shared_spec, tmp_path):
    left_key, right_key = _distinct_stripe_keys()
    left, right = FORK.Event(), FORK.Event()
    _run_processes(_hold_and_wait_for_other,
                   [(shared_spec, left_key, left, right), (shared_spec, right_key, right, left)], tmp_path)


def _die_holding(spec: Spec, key: str) -> None:
    store = spec.open()
    with store.locked([key]):
        os._exit(0)  # a killed fork: no cleanup runs


def _take(spec: Spec, key: str) -> None:
    store = spec.open()
    with store.locked([key]):
        store.apply(upserts=[volume("after-crash")])
    store.close()


def test_a_process_that_dies_holding_a_lock_releases_it(shared_spec, tmp_path):
    key = "b1:volume:name:crash"
    _run_processes(_die_holding, [(shared_spec, key)], tmp_path)
    _run_processes(_take, [(shared_spec, key)], tmp_path)
    store = shared_spec.open()
    assert [r["name"] for r in store.all_records()] == ["after-crash"]
    store.close()


def _advisory_locks_held(conn, key: str) -> int:
    lock_id = db.advisory_key(key) & 0xFFFFFFFFFFFFFFFF
    return conn.exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        f"AND classid = {lock_id >> 32} AND objid = {lock_id & 0xFFFFFFFF}").scalar()


def test_postgresql_advisory_locks_are_held_in_the_block_and_released_after(pg_url):
    store = DbStore(pg_url)
    keys = [f"b1:volume:name:{uuid.uuid4()}" for _key in range(3)]
    try:
        with store.engine.connect() as conn:
            with store.locked(keys):
                assert [_advisory_locks_held(conn, k) for k in keys] == [1, 1, 1]
            assert [_advisory_locks_held(conn, k) for k in keys] == [0, 0, 0]
    finally:
        store.close()


def test_sqlite_readers_do_not_wait_for_a_writer_and_writers_wait_their_turn(tmp_path):
    # Another task in the middle of a write: a read answers at once from the last commit; a write waits
    # (here: a short busy timeout, so it gives up clearly instead of waiting).
    url = f"sqlite:///{tmp_path}/state.db?timeout=0.2"
    store = DbStore(url)
    record = volume()
    store.apply(upserts=[record])
    writer = sqlite3.connect(str(tmp_path / "state.db"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        assert DbStore(url).find("b1", "volume") == [record]
        with pytest.raises(StateStoreError, match="locked"):
            DbStore(url).apply(upserts=[volume("other")])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert sorted(r["name"] for r in store.find("b1", "volume")) == ["vol"]


@pytest.mark.parametrize("column", ["kind", "backend", "data"])
def test_the_database_refuses_rows_another_tool_writes_without_kind_backend_data_or_value(tmp_path, column):
    # A row the store could not read back must not get into a shared database by any way.
    DbStore(f"sqlite:///{tmp_path}/state.db").apply(upserts=[volume()])
    row = {"id": "x", "kind": "volume", "backend": "b1", "data": "{}"}
    connection = sqlite3.connect(str(tmp_path / "state.db"))
    try:
        connection.execute(f"INSERT INTO {db.RECORDS_TABLE} (id, kind, backend, data) VALUES (?, ?, ?, ?)",
                           tuple(row.values()))
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            connection.execute(f"INSERT INTO {db.RECORDS_TABLE} (id, kind, backend, data) VALUES (?, ?, ?, ?)",
                               tuple(dict(row, id="y", **{column: None}).values()))
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            connection.execute(f"INSERT INTO {db.META_TABLE} (key, value) VALUES ('by-hand', NULL)")
    finally:
        connection.close()
