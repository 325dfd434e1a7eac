# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""State in a database through SQLAlchemy Core: SQLite or PostgreSQL.

Two tables:
- `blockstore_records`: one row per record, the whole record as JSON text in
  `data`, plus copies of the fields find() filters on (backend, kind, id, name,
  volume_id, status) in indexed columns, so every lookup is an index lookup
  whatever the number of records;
- `blockstore_meta`: `schema_version`; a database from a newer schema is
  refused and left untouched, as a state file is.

`apply()` is one transaction that upserts and deletes single rows: writers of
different records never lose each other's updates. `locked()` holds
per-resource locks between processes for the whole task:
- PostgreSQL: session advisory locks, keys hashed to bigint and taken in sorted
  order on a dedicated autocommit connection (no transaction stays open while
  the module runs);
- SQLite: striped flock()ed lock files beside the database file, as the JSON
  store does. Chosen over BEGIN IMMEDIATE because an IMMEDIATE transaction
  locks the whole database: held across a module run it would serialize every
  task, and other tasks could not even write their pending records.

SQLAlchemy (~200 ms to import) and the database driver are imported only here,
and this module only when `persistence.storage` is `db`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import threading
import time
import urllib.parse
from typing import Any, Iterable, Iterator

from .. import serialization
from ..errors import InvalidParameter, MissingDependency, StateStoreError
from .base import FILTER_FIELDS, FileLocks, Store, matches, refuse_id_clash

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as sa_postgresql
    from sqlalchemy.dialects import sqlite as sa_sqlite
except ImportError:
    sa = None

OPTION = "persistence.connection"
RECORDS_TABLE = "blockstore_records"
META_TABLE = "blockstore_meta"
# Columns copied out of the JSON record for indexed lookups.
LOOKUP_COLUMNS = ("backend", "kind", "id", *(f for f in FILTER_FIELDS if f != "id"))
SUPPORTED = "sqlite:///path/to/state.db or postgresql+psycopg://user:password@host[:port]/database"
# Seconds: a database that does not answer fails the task quickly and clearly.
CONNECT_TIMEOUT = 5
# Seconds an SQLite writer waits for another one (transactions here last milliseconds).
SQLITE_BUSY_TIMEOUT = 60
# Tries of the switch to WAL while other processes open a new SQLite file (_use_wal): 30 s at most.
WAL_SWITCH_TRIES = 1000
# Serializes schema creation between processes (pg_advisory_xact_lock).
_SCHEMA_LOCK_KEY = 0x626C6B73746F7265  # "blkstore"


def advisory_key(key: str) -> int:
    """A resource key as a signed 64-bit PostgreSQL advisory lock id."""
    digest = hashlib.sha256(b"blockstore.storage:" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _tables(metadata: Any) -> tuple[Any, Any]:
    # Unbounded strings: PostgreSQL stores text and varchar alike, SQLite ignores lengths,
    # and a name of 255 characters can exceed any byte limit.
    records = sa.Table(
        RECORDS_TABLE, metadata,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("volume_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        # One index per filter find() is called with; (backend, kind) alone uses any prefix.
        sa.Index(f"ix_{RECORDS_TABLE}_name", "backend", "kind", "name"),
        sa.Index(f"ix_{RECORDS_TABLE}_volume_id", "backend", "kind", "volume_id"),
        sa.Index(f"ix_{RECORDS_TABLE}_status", "backend", "kind", "status"),
    )
    meta = sa.Table(
        META_TABLE, metadata,
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), nullable=False),
    )
    return records, meta


# Query parameters that carry a secret (libpq takes ?password=..., sslpassword=..., ssl keys...).
SECRET_QUERY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)


def _secret_query_values(url: Any) -> list[str]:
    values: list[str] = []
    for key, value in url.query.items():
        if SECRET_QUERY.search(key):
            values += [value] if isinstance(value, str) else list(value)
    return [v for v in values if v]


def _shown(url: Any) -> str:
    """The URL as messages show it: no password, neither `user:pass@` nor in the query string."""
    hidden = {k: "***" for k in url.query if SECRET_QUERY.search(k)}
    # Rendering quotes the mask ('%2A%2A%2A'): shown as the user part's mask is.
    return (url.update_query_dict(hidden) if hidden else url).render_as_string(
        hide_password=True).replace("%2A%2A%2A", "***")


def _reason(exc: BaseException) -> str:
    """The database's own words, without SQLAlchemy's statement and parameters
    (parameters hold records, and records may hold secrets)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _missing_library(exc: ImportError, url_text: str) -> MissingDependency:
    name = (exc.name or "").split(".")[0]
    if name in ("psycopg", "psycopg_binary", "psycopg_c"):
        return MissingDependency(
            "persistence.connection: PostgreSQL needs the Python library psycopg (version 3) on the controller; "
            "install it with: pip install 'psycopg[binary]'", "psycopg", OPTION)
    return MissingDependency(
        f"persistence.connection: the database driver for {url_text} is not installed "
        f"(Python module {exc.name or exc}); supported: {SUPPORTED}", exc.name or "", OPTION)


class DbStore(Store):
    """Records in SQLite or PostgreSQL; see the module docstring."""

    def __init__(self, url: str) -> None:
        if sa is None:
            raise MissingDependency(
                "persistence.connection: storage 'db' needs the Python library SQLAlchemy (2.0 or later) on the "
                "controller; install it with: pip install 'sqlalchemy>=2' (and 'psycopg[binary]' for PostgreSQL)",
                "sqlalchemy", OPTION)
        self._secrets: list[str] = []
        self.url = self._parse(url)
        self._secrets = [s for s in [self.url.password or "", *_secret_query_values(self.url)] if s]
        # Shown in every message: never the password.
        self.shown_url = _shown(self.url)
        self.dialect = self.url.get_backend_name()
        self.path: str | None = None
        self._memory_lock: threading.RLock | None = None
        self._file_locks: FileLocks | None = None
        self._metadata = sa.MetaData()
        self.records, self.meta = _tables(self._metadata)
        self.engine = self._create_engine()
        try:
            self._setup_schema()
        except BaseException:
            self.engine.dispose()
            raise

    # connection ------------------------------------------------------------
    @staticmethod
    def _parse(url: str) -> Any:
        try:
            parsed = sa.engine.make_url(url)
        except (sa.exc.ArgumentError, ValueError, TypeError):
            # The text is not shown: it may hold a password.
            raise InvalidParameter(f"persistence.connection: not a valid SQLAlchemy URL (the value is not shown as "
                                   f"it may hold a password); expected {SUPPORTED}", OPTION) from None
        backend = parsed.get_backend_name()
        if backend == "postgres":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif backend == "postgresql" and "+" not in parsed.drivername:
            # SQLAlchemy's default PostgreSQL driver is psycopg2; the collection uses psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif backend not in ("sqlite", "postgresql"):
            raise InvalidParameter(f"persistence.connection: database {backend!r} is not supported "
                                   f"({_shown(parsed)}); use {SUPPORTED}", OPTION)
        return parsed

    def _scrub(self, text: str) -> str:
        """Belt and braces: a driver message must never carry the password."""
        for secret in self._secrets:
            for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
                text = text.replace(form, "***")
        return text

    def _create_engine(self) -> Any:
        url = self.url
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:") or url.query.get("mode") == "memory":
                # One in-process database: every checkout must be the same connection.
                options["poolclass"] = sa.pool.StaticPool
                options["connect_args"] = {"check_same_thread": False}
                self._memory_lock = threading.RLock()
            else:
                self.path = os.path.abspath(os.path.expanduser(database))
                url = url.set(database=self.path)
                self._file_locks = FileLocks(self.path + ".locks")
                try:
                    timeout = float(url.query.get("timeout", SQLITE_BUSY_TIMEOUT))
                except (TypeError, ValueError):
                    raise InvalidParameter(f"persistence.connection: timeout in {self.shown_url} must be a number "
                                           "of seconds", OPTION) from None
                options["connect_args"] = {"timeout": timeout}
        else:
            connect_args: dict[str, Any] = {"application_name": "blockstore.storage"}
            if "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = CONNECT_TIMEOUT
            options["connect_args"] = connect_args
        try:
            engine = sa.create_engine(url, **options)
        except ImportError as exc:
            raise _missing_library(exc, self.shown_url) from None
        except sa.exc.NoSuchModuleError:
            raise InvalidParameter(f"persistence.connection: no SQLAlchemy dialect for {self.shown_url}; "
                                   f"use {SUPPORTED}", OPTION) from None
        except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
            raise InvalidParameter(self._scrub(f"persistence.connection: {self.shown_url}: {exc}"), OPTION) from None
        if self.path is not None:
            # Only now that the URL's options and driver are known good: a refused URL leaves nothing behind.
            self._prepare_sqlite_file(self.path)
        if self.dialect == "sqlite":
            self._take_over_sqlite_transactions(engine)
        return engine

    def _prepare_sqlite_file(self, path: str) -> None:
        """Create the directory (0700) and an empty database file (0600): records may hold secrets."""
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise StateStoreError(f"persistence.connection: cannot create the SQLite database {path}: "
                                  f"{exc.strerror}", OPTION) from None
        os.close(fd)

    @staticmethod
    def _take_over_sqlite_transactions(engine: Any) -> None:
        # Python's sqlite3 begins transactions lazily and only before DML, so
        # SQLAlchemy emits BEGIN itself: IMMEDIATE for writes (the write lock is
        # taken up front, waiting under the busy timeout, instead of failing on
        # a read-to-write upgrade), a plain BEGIN for reads (WAL readers never wait).
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            write = conn.get_execution_options().get("blockstore_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextlib.contextmanager
    def _connection(self, write: bool = False) -> Iterator[Any]:
        """A connection in one transaction, committed at the end; database errors become StateStoreError."""
        conn = self._connect()
        try:
            if write:
                conn = conn.execution_options(blockstore_write=True)
            with conn.begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc) from None
        finally:
            conn.close()

    def _connect(self) -> Any:
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc, connecting=True) from None

    def _translate(self, exc: BaseException, connecting: bool = False) -> StateStoreError:
        reason = _reason(exc)
        if self.dialect == "sqlite":
            if "file is not a database" in reason or "malformed" in reason:
                return StateStoreError(
                    f"persistence.connection: {self.path} is not a readable SQLite database ({reason}); it is left "
                    "untouched: restore it from a backup or move it away", OPTION)
            if "unable to open" in reason:
                return StateStoreError(f"persistence.connection: cannot open the SQLite database {self.path}: "
                                       f"{reason}", OPTION)
        if connecting:
            text = f"persistence.connection: cannot connect to the database {self.shown_url}: {reason}"
        else:
            text = f"persistence.connection: the database {self.shown_url} failed: {reason}"
        return StateStoreError(self._scrub(text), OPTION)

    # schema ----------------------------------------------------------------
    def _stored_version(self, conn: Any) -> int | None:
        if not sa.inspect(conn).has_table(META_TABLE):
            return None
        value = conn.execute(sa.select(self.meta.c.value).where(self.meta.c.key == "schema_version")).scalar()
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise StateStoreError(f"database {self.shown_url}: schema_version {value!r} is not an integer; "
                                  "it is left untouched", OPTION) from None

    def _setup_schema(self) -> None:
        """Check the schema version; create the tables on first use.

        Race-safe: creation runs under the database's write lock (SQLite BEGIN
        IMMEDIATE) or a transaction-scoped advisory lock (PostgreSQL), and
        re-checks once it holds it, so 20 processes starting on an empty
        database create the tables once.
        """
        where = f"database {self.shown_url}"
        with self._connection() as conn:
            version = self._stored_version(conn)
        if version is None:
            with self._connection(write=True) as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
                version = self._stored_version(conn)
                if version is None:
                    self._metadata.create_all(conn, checkfirst=True)
                    conn.execute(self.meta.insert().values(key="schema_version",
                                                           value=str(serialization.SCHEMA_VERSION)))
                    version = serialization.SCHEMA_VERSION
        try:
            serialization.check_version(version, where)
        except StateStoreError as exc:
            exc.option = OPTION
            raise
        if self.path is not None:
            self._use_wal()

    def _use_wal(self) -> None:
        """WAL: readers never wait for the writer. Persistent in the file, so set once;
        done after the version check, so a refused database is never modified."""
        try:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                # The switch needs the file to itself, and SQLite answers "locked" at once (no busy wait) while
                # other processes opening a new database hold it: those are short, so it is asked again.
                for attempt in range(WAL_SWITCH_TRIES):
                    if str(mode).lower() == "wal":
                        break
                    try:
                        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    except Exception as exc:  # sqlite3.OperationalError: not imported where the module runs
                        if "locked" not in str(exc) or attempt == WAL_SWITCH_TRIES - 1:
                            raise
                        time.sleep(0.01 + random.random() * 0.05)
                cursor.close()
            finally:
                raw.close()
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc) from None
        except Exception as exc:  # the raw sqlite3 connection raises sqlite3's own errors
            if type(exc).__module__.startswith("sqlite3"):
                raise self._translate(exc) from None
            raise

    # Store interface ---------------------------------------------------------
    @property
    def identity(self) -> str:
        return f"db {self.shown_url}"

    def _load(self, row: Any) -> dict:
        record_id, text = row
        where = f"database {self.shown_url}: record {record_id!r}"
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise StateStoreError(f"{where}: not valid JSON ({exc}); it is left untouched", OPTION) from None
        serialization.check_record(record, where)
        return record

    def find_query(self, backend: str, kind: str | None, filters: dict) -> tuple[Any, dict]:
        """The SELECT behind find(), and the filters left to match in Python.

        Every column it filters on leads an index, so a lookup costs the same at
        1,000 and at 100,000 records. Fields without a column (none of
        FILTER_FIELDS) are matched on the loaded records.
        """
        columns = self.records.c
        query = sa.select(columns.id, columns.data).where(columns.backend == backend)
        if kind is not None:
            query = query.where(columns.kind == kind)
        unindexed = {}
        for field, value in filters.items():
            if value is None:
                continue
            if field in LOOKUP_COLUMNS and isinstance(value, str):
                query = query.where(columns[field] == value)
            else:
                unindexed[field] = value
        return query, unindexed

    def find(self, backend: str, kind: str | None = None, **filters: str | None) -> list[dict]:
        query, unindexed = self.find_query(backend, kind, filters)
        with self._connection() as conn:
            rows = conn.execute(query).all()
        records = [self._load(row) for row in rows]
        if unindexed:
            records = [r for r in records if matches(r, backend, kind, unindexed)]
        return records

    def by_id(self, object_id: str) -> dict | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(self.records.c.id, self.records.c.data)
                               .where(self.records.c.id == object_id)).first()
        return self._load(row) if row is not None else None

    def all_records(self) -> list[dict]:
        with self._connection() as conn:
            rows = conn.execute(sa.select(self.records.c.id, self.records.c.data)).all()
        return [self._load(row) for row in rows]

    @staticmethod
    def _row(record: dict) -> dict:
        serialization.check_record(record, "apply: record")
        row = {}
        for column in LOOKUP_COLUMNS:
            value = record.get(column)
            row[column] = value if isinstance(value, str) else None
        row["data"] = json.dumps(record, sort_keys=True, separators=(",", ":"))
        return row

    def apply(self, upserts: Iterable[dict] = (), deletes: Iterable[dict] = ()) -> None:
        # Last one wins for an id given twice, as in the other stores; one row each.
        rows = list({r["id"]: r for r in (self._row(u) for u in upserts)}.values())
        gone = sorted({d["id"] for d in deletes})
        if not rows and not gone:
            return
        dialect = sa_postgresql if self.dialect == "postgresql" else sa_sqlite
        insert = dialect.insert(self.records)
        upsert = insert.on_conflict_do_update(
            index_elements=[self.records.c.id],
            set_={c: insert.excluded[c] for c in (*LOOKUP_COLUMNS, "data") if c != "id"})
        with self._connection(write=True) as conn:
            if rows:
                columns = self.records.c
                held = {row.id: {"id": row.id, "kind": row.kind, "backend": row.backend, "name": row.name}
                        for row in conn.execute(sa.select(columns.id, columns.kind, columns.backend, columns.name)
                                                .where(columns.id.in_([r["id"] for r in rows])))}
                for row in rows:
                    refuse_id_clash(held.get(row["id"]), row)
                conn.execute(upsert, rows)
            if gone:
                conn.execute(self.records.delete().where(self.records.c.id.in_(gone)))

    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        if self._memory_lock is not None:
            with self._memory_lock:
                yield
        elif self._file_locks is not None:
            with self._file_locks.locked(keys):
                yield
        else:
            with self._advisory_locks(keys):
                yield

    @contextlib.contextmanager
    def _advisory_locks(self, keys: Iterable[str]) -> Iterator[None]:
        # Sorted: every process takes them in one order, so two tasks never deadlock.
        lock_ids = sorted({advisory_key(k) for k in keys})
        if not lock_ids:
            yield
            return
        conn = self._connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            try:
                for lock_id in lock_ids:
                    conn.execute(sa.select(sa.func.pg_advisory_lock(lock_id)))
            except sa.exc.DBAPIError as exc:
                raise self._translate(exc) from None
            yield
        finally:
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock_all()))
            except sa.exc.DBAPIError:
                # The session is broken; closing it for real drops its locks too.
                conn.invalidate()
            conn.close()

    def close(self) -> None:
        self.engine.dispose()
