# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A blockstore.storage state store kept in Redis (store contract 1, docs/stores.md of the collection).

Keys, all under `prefix`:
- `<prefix>:backend:<backend>`  hash: record id -> record JSON (one backend's records);
- `<prefix>:index`              hash: record id -> its backend (deletes name only kind and id);
- `<prefix>:backends`           set of backends that have records (all_records);
- `<prefix>:lock:<key>`         a lock: a random token, with an expiry renewed while held.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.parse
from typing import Iterable, Iterator

from ansible_collections.blockstore.storage.plugins.module_utils import serialization
from ansible_collections.blockstore.storage.plugins.module_utils.errors import MissingDependency, StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.base import (
    CONTRACT_VERSION,
    Store,
    matches,
)

try:
    import redis
except ImportError:  # reported when the store is opened, naming the package
    redis = None

# Renew a held lock this often (a fraction of its expiry), and poll a taken one this often.
RENEW_FRACTION = 3
POLL_SECONDS = 0.02
# Seconds to connect and to wait for an answer: a Redis that does not answer fails the task clearly.
SOCKET_TIMEOUT = 10

# Delete or extend a lock only while it still holds our token: an expired lock may be someone else's now.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit((parts.scheme, user + netloc, parts.path, parts.query, parts.fragment))


class RedisStore(Store):
    """Records and locks in Redis; see the module docstring."""

    contract_version = CONTRACT_VERSION
    options = {
        "url": {"type": "str", "required": True, "no_log": True, "env": ["BLOCKSTORE_REDIS_URL"],
                "description": "redis://[:password@]host[:port]/db (or rediss:// for TLS)."},
        "prefix": {"type": "str", "default": "blockstore", "env": ["BLOCKSTORE_REDIS_PREFIX"],
                   "description": "Prefix of every key this store writes: one per site sharing a Redis."},
        "lock_ttl": {"type": "float", "default": 30.0, "env": ["BLOCKSTORE_REDIS_LOCK_TTL"],
                     "description": "Seconds a lock outlives a holder that died (renewed while it lives)."},
    }

    def __init__(self, url: str, prefix: str = "blockstore", lock_ttl: float = 30.0) -> None:
        if redis is None:
            raise MissingDependency("persistence: the store 'redis' needs the Python library redis on the "
                                    "controller; install it with: pip install redis", "redis", "persistence")
        if not prefix.strip(":"):
            raise StateStoreError("persistence.prefix: must not be empty", "persistence.prefix")
        if lock_ttl <= 0:
            raise StateStoreError("persistence.lock_ttl: must be a positive number of seconds",
                                  "persistence.lock_ttl")
        self.url = url
        self.prefix = prefix
        self.lock_ttl_ms = int(lock_ttl * 1000)
        try:
            self.client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                               socket_connect_timeout=SOCKET_TIMEOUT)
        except ValueError as exc:
            raise StateStoreError(f"persistence.url: not a Redis URL ({exc}); expected redis://[:password@]host"
                                  "[:port]/db", "persistence.url") from None
        self._release = self.client.register_script(_RELEASE)
        self._renew = self.client.register_script(_RENEW)
        self._ping()

    @property
    def identity(self) -> str:
        return f"redis {_shown(self.url)} prefix {self.prefix}"

    def _ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise StateStoreError(f"persistence.url: cannot reach Redis at {_shown(self.url)}: {exc}",
                                  "persistence.url") from None

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # reading ------------------------------------------------------------------
    def _load(self, backend: str, text: bytes) -> dict:
        where = f"redis {self._key('backend', backend)}"
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise StateStoreError(f"{where}: a record is not valid JSON ({exc}); it is left untouched") from None
        return serialization.check_record(record, where)

    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        wanted = filters.get("id")
        hash_key = self._key("backend", backend)
        if wanted is not None:  # one field, whatever the number of records
            text = self.client.hget(hash_key, wanted)
            texts = [] if text is None else [text]
        else:
            texts = self.client.hvals(hash_key)
        records = (self._load(backend, t) for t in texts)
        return [r for r in records if matches(r, backend, kind, filters)]

    def all_records(self) -> list[dict]:
        records = []
        for backend in sorted(b.decode() for b in self.client.smembers(self._key("backends"))):
            records += [self._load(backend, t) for t in self.client.hvals(self._key("backend", backend))]
        return records

    # writing ------------------------------------------------------------------
    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        # Everything is checked and encoded before the first write: a bad record writes nothing.
        encoded = {}
        for record in upserts:
            serialization.check_record(record, "apply: record")
            encoded[record["id"]] = (record["backend"], json.dumps(record, sort_keys=True, separators=(",", ":")))
        gone = [d["id"] for d in deletes if d["id"] not in encoded]
        ids = [*encoded, *gone]
        if not ids:
            return
        index = self._key("index")
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: a writer that moved one of these ids in between makes EXEC fail; then retry.
                    pipe.watch(index)
                    before = dict(zip(ids, pipe.hmget(index, ids)))
                    pipe.multi()
                    for record_id, (backend, text) in encoded.items():
                        old = before.get(record_id)
                        if old is not None and old.decode() != backend:
                            pipe.hdel(self._key("backend", old.decode()), record_id)
                        pipe.hset(self._key("backend", backend), record_id, text)
                        pipe.hset(index, record_id, backend)
                        pipe.sadd(self._key("backends"), backend)
                    for record_id in gone:
                        old = before.get(record_id)
                        if old is not None:
                            pipe.hdel(self._key("backend", old.decode()), record_id)
                        pipe.hdel(index, record_id)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    # locks --------------------------------------------------------------------
    def _acquire(self, lock_key: str, token: str) -> None:
        while not self.client.set(lock_key, token, nx=True, px=self.lock_ttl_ms):
            time.sleep(POLL_SECONDS)

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        # Sorted: every process takes them in one order, so two tasks never deadlock.
        lock_keys = [self._key("lock", k) for k in sorted(set(keys))]
        token = secrets.token_hex(16)
        held: list[str] = []
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep_alive, args=(held, token, stop), daemon=True)
        renewer.start()  # before the first lock: waiting for a later one must not let an earlier one expire
        try:
            for lock_key in lock_keys:
                self._acquire(lock_key, token)
                held.append(lock_key)
            yield
        finally:
            stop.set()
            renewer.join()
            for lock_key in held:
                with contextlib.suppress(redis.RedisError):
                    self._release(keys=[lock_key], args=[token])

    def _keep_alive(self, held: list[str], token: str, stop: threading.Event) -> None:
        """Renew our locks while the task runs; a holder that dies stops renewing, so they expire."""
        while not stop.wait(self.lock_ttl_ms / 1000 / RENEW_FRACTION):
            for lock_key in list(held):
                with contextlib.suppress(redis.RedisError):
                    self._renew(keys=[lock_key], args=[token, self.lock_ttl_ms])

    def close(self) -> None:
        self.client.close()
