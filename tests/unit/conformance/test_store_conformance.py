# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store conformance suite: what docs/stores.md asks of every state store, built in or plugin.

Every store is opened the way a task opens it (`open_store(persistence)`), once per process;
concurrency tests use real processes, as Ansible's forks are. Each test works on a backend
name of its own and deletes its records at the end, so the suite can run against a store that
already holds a site's state. How to run it against your store: conftest.py beside this file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import uuid

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import serialization
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.base import Store
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import Sealer, clear_values, new_key
from ansible_collections.blockstore.storage.plugins.module_utils.transfer import StateTransfer

FORK = multiprocessing.get_context("fork")
WRITERS = 20
INCREMENTS = 5
LISTED = 10_000
# The stated cost of a listing: one find() or all_records() over 10,000 records, on this project's CI machine.
LISTING_SECONDS = 5.0
# How soon a lock must be free again after its holder was killed with -9 (docs/stores.md).
LOCK_FREED_SECONDS = 60.0
# Stores whose state lives in the process (nothing to share with another process, nothing to kill).
IN_PROCESS = ("memory",)


# --- the store under test ----------------------------------------------------------------------

def _pg_spec(schema: str) -> dict:
    sa = pytest.importorskip("sqlalchemy")
    base = os.environ["BLOCKSTORE_TEST_PG_URL"]
    engine = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return {"storage": "db", "connection": url.render_as_string(hide_password=False)}


def _drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["BLOCKSTORE_TEST_PG_URL"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store_spec(request, tmp_path, monkeypatch):
    """The `persistence` of an empty store (built-in), or the one given with --store."""
    # One sealing key for the test and every process it starts; no key file in the user's home.
    monkeypatch.setenv("BLOCKSTORE_SECRET_KEY", new_key())
    param = request.param
    if isinstance(param, dict):
        yield param
        return
    if param == "memory":
        yield {"storage": "memory"}
    elif param == "file":
        yield {"storage": "file", "path": str(tmp_path / "state" / "state.json")}
    elif param == "sqlite":
        pytest.importorskip("sqlalchemy")
        yield {"storage": "db", "connection": f"sqlite:///{tmp_path}/state/state.db"}
    elif param == "postgresql":
        if not os.environ.get("BLOCKSTORE_TEST_PG_URL"):
            pytest.skip("BLOCKSTORE_TEST_PG_URL is not set (scripts/test.sh starts a PostgreSQL and sets it)")
        schema = f"c_{uuid.uuid4().hex[:16]}"
        yield _pg_spec(schema)
        _drop_pg_schema(schema)
    elif param == "redis":
        url = os.environ.get("BLOCKSTORE_TEST_REDIS_URL")
        if not url:
            pytest.skip("BLOCKSTORE_TEST_REDIS_URL is not set (scripts/test.sh starts a Redis and sets it)")
        prefix = f"conformance-{uuid.uuid4().hex[:12]}"
        # A short lock expiry: the kill -9 test waits for it.
        yield {"storage": "redis", "url": url, "prefix": prefix, "lock_ttl": 2}
        _drop_redis_prefix(url, prefix)
    else:  # pragma: no cover - conftest.py gives only the names above
        raise AssertionError(param)


@pytest.fixture
def backend(store_spec):
    """A backend name of this test's own; its records are deleted afterwards."""
    name = f"conformance-{uuid.uuid4().hex[:12]}"
    yield name
    if store_spec.get("storage") in IN_PROCESS:
        return
    store = open_store(store_spec)
    try:
        leftovers = store.find(name)
        if leftovers:
            store.apply(deletes=[{"kind": r["kind"], "id": r["id"]} for r in leftovers])
    finally:
        store.close()


@pytest.fixture
def store(store_spec):
    opened = open_store(store_spec)
    yield opened
    opened.close()


def _in_process(spec: dict) -> bool:
    return spec.get("storage") in IN_PROCESS


def volume(backend: str, name: str = "vol", **fields) -> dict:
    record = {"kind": "volume", "id": str(uuid.uuid4()), "backend": backend, "name": name, "size": 1,
              "status": "available", "metadata": {}, "created_at": "2026-01-01T00:00:00Z"}
    record.update(fields)
    return record


def snapshot(vol: dict, name: str = "snap", **fields) -> dict:
    record = {"kind": "snapshot", "id": str(uuid.uuid4()), "backend": vol["backend"], "name": name,
              "volume_id": vol["id"], "volume_size": vol["size"], "status": "available"}
    record.update(fields)
    return record


def connection(vol: dict, sealer: Sealer, **fields) -> dict:
    record = {"kind": "connection", "id": str(uuid.uuid4()), "backend": vol["backend"], "volume_id": vol["id"],
              "host": "node1", "status": "attached", "mode": "rw", "connector": {"host": "node1"},
              "connection_info": {"driver_volume_type": "iscsi",
                                  "data": {"auth_method": "CHAP", "auth_username": "u",
                                           "auth_password": sealer.seal("chap secret")}},
              "driver_data": {"keyring": sealer.seal("[client.x]\nkey = abc")}}
    record.update(fields)
    return record


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


# --- what every store must do ---------------------------------------------------------------------

def test_identity_names_the_store_without_secrets(store, store_spec):
    identity = store.identity
    assert isinstance(identity, str) and identity.strip()
    for key, value in store_spec.items():
        if key != "storage" and isinstance(value, str) and "@" in value:  # a URL with credentials
            password = value.split("@")[0].rsplit(":", 1)[-1]
            assert password not in identity


def test_round_trip_of_every_record_kind_with_sealed_fields(store, backend):
    sealer = store.sealer
    vol = volume(backend, name="dätä 1", metadata={"owner": "ops", "tags": ["a", "b"], "nested": {"n": 1}},
                 description="", multiattach=True)
    snap = snapshot(vol, status="creating")
    conn = connection(vol, sealer)
    store.apply(upserts=[vol, snap, conn])

    assert by_id(store.find(backend)) == by_id([vol, snap, conn])
    got = store.find(backend, "connection", id=conn["id"])
    assert got == [conn]
    # The store gives back the sealed tokens, never the clear values; the core can unseal them.
    assert clear_values(got[0]) == []
    assert sealer.unseal_tree(got[0])["connection_info"]["data"]["auth_password"] == "chap secret"
    assert {r["id"] for r in store.all_records()} >= {vol["id"], snap["id"], conn["id"]}

    changed = dict(vol, name="renamed", status="in-use", size=2)
    store.apply(upserts=[changed], deletes=[{"kind": "snapshot", "id": snap["id"]}])
    assert by_id(store.find(backend)) == by_id([changed, conn])


def test_find_filters(store, backend):
    other_backend = f"{backend}-other"
    v1, v2 = volume(backend, "data1"), volume(backend, "data2", status="creating")
    s1, s2 = snapshot(v1, "s1"), snapshot(v2, "s2", status="error")
    elsewhere = volume(other_backend, "data1")
    store.apply(upserts=[v1, v2, s1, s2, elsewhere])
    try:
        assert by_id(store.find(backend, "volume")) == by_id([v1, v2])
        assert store.find(backend, "volume", name="data1") == [v1]
        assert store.find(other_backend, "volume", name="data1") == [elsewhere]
        assert store.find(backend, "volume", id=v2["id"]) == [v2]
        assert store.find(backend, "snapshot", id=v2["id"]) == []  # right id, wrong kind
        assert store.find(other_backend, "volume", id=v1["id"]) == []  # right id, wrong backend
        assert store.find(backend, "snapshot", volume_id=v1["id"]) == [s1]
        assert store.find(backend, "volume", status="creating") == [v2]
        assert store.find(backend, "snapshot", status="error", volume_id=v2["id"]) == [s2]
        assert store.find(backend, "snapshot", status="available", volume_id=v2["id"]) == []
        assert by_id(store.find(backend, "volume", name=None, id=None, status=None)) == by_id([v1, v2])
        assert store.find(f"{backend}-none") == []
    finally:
        store.apply(deletes=[elsewhere])


@pytest.mark.parametrize("bad", ["unknown kind", "not JSON"])
def test_apply_is_all_or_nothing(store, backend, bad):
    kept = volume(backend, "kept")
    store.apply(upserts=[kept])
    good = volume(backend, "good")
    broken = volume(backend, "broken")
    if bad == "unknown kind":
        broken["kind"] = "nonsense"
    else:
        broken["metadata"] = {"value": object()}  # a record must be JSON
    with pytest.raises((BlockstoreError, TypeError, ValueError)):
        store.apply(upserts=[good, broken], deletes=[{"kind": "volume", "id": kept["id"]}])
    # Neither the upsert before the bad record nor the delete took effect.
    assert store.find(backend) == [kept]
    # Positive control: the same change without the bad record is applied.
    store.apply(upserts=[good], deletes=[{"kind": "volume", "id": kept["id"]}])
    assert store.find(backend) == [good]


def _writer(spec: dict, backend: str, counter_id: str, number: int, errors) -> None:
    try:
        store = open_store(spec)
        try:
            store.apply(upserts=[volume(backend, f"writer-{number}")])
            for _increment in range(INCREMENTS):
                with store.locked([f"{backend}:volume:id:{counter_id}"]):
                    counter = store.find(backend, "volume", id=counter_id)[0]
                    time.sleep(0.002)  # widen the read-modify-write window
                    store.apply(upserts=[dict(counter, size=counter["size"] + 1)])
        finally:
            store.close()
    except BaseException as exc:  # reported to the parent, which fails the test
        errors.put(f"writer {number}: {type(exc).__name__}: {exc}")


def test_no_lost_update_with_20_writers(store_spec, store, backend):
    counter = volume(backend, "counter", size=0)
    store.apply(upserts=[counter])
    if _in_process(store_spec):
        # An in-process store is shared by threads, not processes.
        import queue
        import threading

        errors = queue.Queue()
        workers = [threading.Thread(target=_thread_writer, args=(store, backend, counter["id"], n, errors))
                   for n in range(WRITERS)]
    else:
        errors = FORK.Queue()
        workers = [FORK.Process(target=_writer, args=(store_spec, backend, counter["id"], n, errors))
                   for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == []
    assert store.find(backend, "volume", id=counter["id"])[0]["size"] == WRITERS * INCREMENTS
    names = {r["name"] for r in store.find(backend, "volume")}
    assert names == {"counter", *(f"writer-{n}" for n in range(WRITERS))}


def _thread_writer(store: Store, backend: str, counter_id: str, number: int, errors) -> None:
    try:
        store.apply(upserts=[volume(backend, f"writer-{number}")])
        for _increment in range(INCREMENTS):
            with store.locked([f"{backend}:volume:id:{counter_id}"]):
                counter = store.find(backend, "volume", id=counter_id)[0]
                time.sleep(0.002)
                store.apply(upserts=[dict(counter, size=counter["size"] + 1)])
    except BaseException as exc:
        errors.put(f"writer {number}: {type(exc).__name__}: {exc}")


def _holder(spec: dict, key: str, held) -> None:
    store = open_store(spec)
    with store.locked([key]):
        held.set()
        time.sleep(600)


def _contender(spec: dict, key: str, got) -> None:
    store = open_store(spec)
    with store.locked([key]):
        got.set()
    store.close()


def test_lock_is_freed_when_its_holder_is_killed(store_spec, backend):
    if _in_process(store_spec):
        pytest.skip("an in-process store has no lock another process could wait for")
    key = f"{backend}:volume:name:locked"
    held, got = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_holder, args=(store_spec, key, held))
    holder.start()
    contender = None
    try:
        assert held.wait(60), "the holder did not get the lock"
        contender = FORK.Process(target=_contender, args=(store_spec, key, got))
        contender.start()
        # Positive control: while its holder lives, the lock is not given to anyone else.
        assert not got.wait(1.5)
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        started = time.monotonic()
        assert got.wait(LOCK_FREED_SECONDS), f"the lock was not freed within {LOCK_FREED_SECONDS} s of kill -9"
        print(f"lock freed {time.monotonic() - started:.2f} s after kill -9")
    finally:
        for process in (holder, contender):
            if process is not None and process.is_alive():
                process.kill()
                process.join(10)


def test_listing_10000_records_within_the_stated_cost(store, backend, request):
    limit = request.config.getoption("--listing-seconds", default=None) or LISTING_SECONDS
    volumes = [volume(backend, f"v{n:05d}", metadata={"n": n}) for n in range(LISTED)]
    for start in range(0, LISTED, 1000):
        store.apply(upserts=volumes[start:start + 1000])
    try:
        timings = {}
        for label, call in (("find(backend)", lambda: store.find(backend)),
                            ("find(backend, volume)", lambda: store.find(backend, "volume")),
                            ("find by name", lambda: store.find(backend, "volume", name="v04242")),
                            ("all_records", store.all_records)):
            started = time.monotonic()
            found = call()
            timings[label] = time.monotonic() - started
            mine = [r for r in found if r["backend"] == backend]
            assert len(mine) == (1 if label == "find by name" else LISTED), label
        print("listing 10,000 records: " + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
        slow = {k: round(v, 3) for k, v in timings.items() if v > limit}
        assert slow == {}, f"listings slower than {limit} s"
    finally:
        store.apply(deletes=[{"kind": "volume", "id": v["id"]} for v in volumes])
    assert store.find(backend) == []


def test_migration_in_and_out_through_storage_state(store, backend, tmp_path):
    sealer = store.sealer
    vol = volume(backend, "migrated")
    records = [vol, snapshot(vol, "snap"), connection(vol, sealer)]
    src = tmp_path / "incoming.json"
    src.write_text(serialization.dumps(records))

    imported = StateTransfer.run_on_store(store, backend, {"state": "imported", "src": str(src)}, False)
    assert imported["changed"] is True
    assert by_id(store.find(backend)) == by_id(records)
    again = StateTransfer.run_on_store(store, backend, {"state": "imported", "src": str(src)}, False)
    assert again["changed"] is False  # nothing new: the store gave back exactly what it was given

    dest = tmp_path / "exported.json"
    exported = StateTransfer.run_on_store(store, backend, {"state": "exported", "dest": str(dest)}, False)
    assert exported["count"] == len(records)
    assert by_id(json.loads(dest.read_text())["records"].values()) == by_id(records)
    # Out of this store into a JSON file store, where the same records arrive.
    other = open_store({"storage": "file", "path": str(tmp_path / "other" / "state.json")})
    StateTransfer.run_on_store(other, backend, {"state": "imported", "src": str(dest)}, False)
    assert by_id(other.find(backend)) == by_id(records)
