"""Projection store on PostgreSQL, built on eventsourcing's PostgresTrackingRecorder.

The production store: the SQL of projections/sql_store.py, shared with the
SQLite store, on PostgreSQL.  Every key text column uses the "C" collation,
so ORDER BY and ``due_at <= ...`` compare bytes, as SQLite does, whatever
locale the server was initialised with.  A tracking that is not beyond the
stored one raises eventsourcing's IntegrityError and the whole batch rolls
back, so a record is never counted twice, even with several projector
replicas.  What is this adapter's own: connections, retries across lost
connections, and the locks below.

Several projectors may share one store (one per Kafka consumer).  Journal
writes take a transaction-scoped advisory lock, so journal sequence numbers
are handed out in commit order and a reader paging with ``after_seq`` never
skips an entry that commits late.

A store lives in one PostgreSQL schema (``?schema=NAME`` in the URL), so
a rebuilt store can be built beside the live one in the same database and
the URL switched (docs/OPERATIONS.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import sql
from psycopg.rows import tuple_row

from projections import sql_store
from projections.retry import retry
from projections.sql_store import Dialect, SQLProjectionStore, tables
from projections.store import StoreUnavailable

__all__ = [
    "PostgresProjectionStore",
    "STORE_SCHEMA_VERSION",
    "POSTGRES",
    "lots_sql",
    "standing_alerts_sql",
    "application_name",
]

STORE_SCHEMA_VERSION = 1
DEFAULT_PORT = 5432
DEFAULT_USER = "postgres"
DEFAULT_SCHEMA = "public"
CONNECT_TIMEOUT_S = 5  # per connection attempt, and per wait for a pooled connection
ATTEMPTS_MAX = 5  # tries of one operation across lost connections before failing loudly
RETRY_WAIT_S = 0.5  # wait before the second try, doubled before each further one
LOCK_TIMEOUT_S = 30  # a statement waiting longer for a lock fails (and is retried)
POOL_SIZE = 2  # connections per store object; a projector uses one at a time
ANY_MAX = 1000  # ids per "= ANY(%s)" statement: keeps statements bounded
# The read models whose indexes the integrity check compares with the tables.
CHECKED_TABLES = ("store_meta", "reports", "lots", "alert_steps", "licenses", "alert_status",
                  "alert_journal", "dead_letters", "tracking")

_log = logging.getLogger(__name__)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class _Postgres(Dialect):
    mark = "%s"
    percent = "%%"
    key_text = 'TEXT COLLATE "C"'
    without_rowid = ""
    serial_key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    big_int = "BIGINT"
    blob = "BYTEA"
    ids_max = ANY_MAX
    reporter = "payload::json->>'reporter'"
    statistics = "ANALYZE reports, lots, alert_steps, licenses, alert_status, alert_journal"
    due_bound_outright = True
    ignore_prefix = "INSERT INTO"
    ignore_suffix = " ON CONFLICT DO NOTHING"

    def ids_in(self, column: str, ids: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        return f"{column} = ANY(%s)", (list(ids),)

    def starts_with(self, column: str, prefix: str) -> tuple[str, tuple[Any, ...]]:
        return f"starts_with({column}, %s)", (prefix,)


POSTGRES = _Postgres()
R = TypeVar("R")


class _Datastore(PostgresDatastore):
    """The library's datastore, with every connection pointed at one schema."""

    def after_connect_func(self) -> Callable[[psycopg.Connection[Any]], None]:
        configure = super().after_connect_func()
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema))
        lock_timeout = sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{LOCK_TIMEOUT_S}s"))
        # pg_stat_activity then says which store a connection serves.
        application = sql.SQL("SET application_name = {}").format(sql.Literal(application_name(self.schema)))

        def after_connect(conn: psycopg.Connection[Any]) -> None:
            configure(conn)  # autocommit, idle-in-transaction timeout
            conn.execute(search_path)
            conn.execute(lock_timeout)
            conn.execute(application)

        return after_connect


class PostgresProjectionStore(PostgresTrackingRecorder, SQLProjectionStore):
    dialect = POSTGRES

    def __init__(
        self,
        *,
        dbname: str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        user: str = DEFAULT_USER,
        password: str = "",
        schema: str = DEFAULT_SCHEMA,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
        attempts_max: int = ATTEMPTS_MAX,
        retry_wait_s: float = RETRY_WAIT_S,
    ):
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StoreUnavailable(f"schema: {schema!r} is not a plain identifier (letters, digits, _; at most 63)")
        if attempts_max < 1:
            raise StoreUnavailable(f"attempts_max: {attempts_max!r} must be at least 1")
        self.where = f"postgresql://{host}:{port}/{dbname}?schema={schema}"
        self.schema = schema
        self.attempts_max = attempts_max
        self.retry_wait_s = retry_wait_s
        self._closed = False
        self._journal_lock = _lock_key("journal", schema)
        self._batch_lock = _lock_key("batch", schema)
        self._lock_conn: psycopg.Connection[Any] | None = None
        # exclusive() is re-entrant per thread (each thread's own depth), and
        # a second thread of this process waits for the first, as a second
        # process waits on the advisory lock.
        self._exclusive_here = threading.local()
        self._exclusive_thread_lock = threading.Lock()
        self._batch_epoch: int | None = None  # fencing token of the batch lock we hold
        connect: dict[str, Any] = {"host": host, "port": port, "dbname": dbname, "user": user}
        if password:
            connect["password"] = password
        self._connect = {**connect, "connect_timeout": connect_timeout_s, "autocommit": True}
        # A direct connection first: a clear one-line error when the server
        # is not there, and a session lock under which the schema is made, so
        # replicas starting together do not race to create the same tables.
        try:
            probe = psycopg.connect(**connect, connect_timeout=connect_timeout_s, autocommit=True)
        except psycopg.Error as error:
            raise StoreUnavailable(f"projection store {self.where}: cannot connect: {_one_line(error)}") from None
        datastore = None
        try:
            probe.execute("SELECT pg_advisory_lock(%s)", (_lock_key("schema", schema),))
            probe.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            datastore = _Datastore(
                dbname=dbname, host=host, port=port, user=user, password=password,
                connect_timeout=connect_timeout_s, pool_size=POOL_SIZE, schema=schema,
                pool_open_timeout=connect_timeout_s, lock_timeout=LOCK_TIMEOUT_S,
            )
            super().__init__(datastore, tracking_table_name="tracking")
            self.sql_create_statements.extend(sql.SQL(s) for s in tables(POSTGRES))  # type: ignore[arg-type]
            self.create_table()
            self._check_schema_version()
        except StoreUnavailable:
            if datastore is not None:
                datastore.close()
            raise
        except (psycopg.Error, PersistenceError) as error:
            if datastore is not None:
                datastore.close()
            raise StoreUnavailable(
                f"projection store {self.where}: cannot prepare its tables: {_one_line(error)}"
            ) from error
        finally:
            probe.close()  # releases the session lock

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresProjectionStore:
        """``postgresql://user[:password]@host[:port]/db[?schema=NAME]``."""
        parts = urlparse(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise StoreUnavailable(f"store URL {url!r}: scheme must be postgresql://")
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreUnavailable(f"store URL {url!r} names no database: write postgresql://user@host:port/db")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"schema"})
        if unknown:
            raise StoreUnavailable(f"store URL {url!r}: unknown parameter {unknown[0]!r} (only schema=NAME)")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise StoreUnavailable(f"store URL {url!r}: port is not a number") from None
        return cls(
            dbname=dbname,
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or DEFAULT_USER),
            password=unquote(parts.password or ""),
            schema=query.get("schema", [DEFAULT_SCHEMA])[-1],
            **options,
        )

    def _check_schema_version(self) -> None:
        with self._transaction(commit=True) as c:
            c.execute("SELECT value FROM store_meta WHERE key = 'schema_version' FOR UPDATE")
            row = c.fetchone()
            if row is None:
                c.execute("INSERT INTO store_meta VALUES ('schema_version', %s)", (str(STORE_SCHEMA_VERSION),))
                return
            try:
                found = int(row[0])
            except ValueError:
                raise StoreUnavailable(
                    f"projection store {self.where}: schema_version {row[0]!r} is not a number"
                ) from None
            if found != STORE_SCHEMA_VERSION:
                age = "older" if found < STORE_SCHEMA_VERSION else "newer"
                raise StoreUnavailable(
                    f"projection store {self.where} has schema version {found}, {age} than version "
                    f"{STORE_SCHEMA_VERSION} that this ledger reads and writes: build a new store "
                    f"beside it by replaying the log and switch the URL (docs/OPERATIONS.md)"
                )

    # -- connections, retries --------------------------------------------------

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[psycopg.Cursor[Any]]:
        # Tuple rows (the library's default is dicts) so rows compare and hash
        # exactly like the SQLite store's.  Errors arrive as eventsourcing's
        # persistence errors, translated by get_connection.
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=not commit):
            yield conn.cursor(row_factory=tuple_row)

    def _retrying(self, what: str, operation: Callable[[], R]) -> R:
        """Run ``operation`` (one whole transaction); on a lost connection,
        try again up to ``attempts_max`` times, then fail loudly.

        Safe for commit_batch too: if the connection died after the server
        committed, the retry finds its trackings already stored and raises
        IntegrityError -- the projector restarts from the tracked offsets.
        """

        def failed(error: Exception, attempt: int) -> None:
            if attempt < self.attempts_max:
                _log.warning("projection store %s: %s failed (%s); attempt %d of %d in %.1f s",
                             self.where, what, _one_line(error), attempt + 1, self.attempts_max,
                             self.retry_wait_s * 2 ** (attempt - 1))

        return retry(
            operation, attempts_max=self.attempts_max, wait_s=self.retry_wait_s, backoff=2,
            retryable=lambda error: isinstance(error, (OperationalError, InterfaceError)), failed=failed,
            exhausted=lambda error, attempt: StoreUnavailable(
                f"projection store {self.where}: could not {what} in {attempt} attempts; "
                f"last error: {_one_line(error)}"),
        )

    def _begin_batch(self, c: Any) -> None:
        self._check_batch_lock_held(c)

    def _begin_sweep(self, c: Any) -> None:
        # One sweeper at a time: replicas sweeping together would
        # otherwise both read the same "previous" status.
        self._lock_journal(c)

    def _lock_journal(self, c: Any) -> None:
        # Held to commit: journal sequence numbers are handed out in commit
        # order, and the status read next is the latest committed one.
        c.execute("SELECT pg_advisory_xact_lock(%s)", (self._journal_lock,))

    def _snapshot(self, c: Any) -> None:
        # One REPEATABLE READ snapshot, so the digests describe one state.
        c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def integrity_problems(self) -> tuple[str, list[str]]:
        """With the amcheck extension installed in the database (a superuser
        runs ``CREATE EXTENSION amcheck`` once; this check never installs
        anything), every B-tree index of the store's tables is checked
        against its table: ``bt_index_check(index, heapallindexed => true)``.
        Without it, a weaker check that needs no privilege and rewrites
        nothing (no REINDEX): each table counted by a sequential scan and by
        an index-only scan of each of its indexes must agree."""

        def read() -> tuple[str, list[str]]:
            problems: list[str] = []
            with self._transaction(commit=False) as c:
                # Installed in some schema of the database, not the store's:
                # its functions are called by their qualified name.
                c.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'amcheck'")
                row = c.fetchone()
                amcheck = row is not None
                check = sql.SQL("SELECT {}.bt_index_check(%s::regclass, true)").format(
                    sql.Identifier(row[0].strip('"'))) if row else None
                c.execute(
                    "SELECT t.relname, i.relname, "
                    "array_to_string(array(SELECT quote_ident(a.attname) FROM unnest(x.indkey) k "
                    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k), ',') "
                    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_am m ON m.oid = i.relam "
                    "WHERE t.relnamespace = current_schema()::regnamespace AND m.amname = 'btree' "
                    "AND t.relname = ANY(%s) ORDER BY 1, 2",
                    (list(CHECKED_TABLES),),
                )
                indexes = c.fetchall()
                for table_name, index_name, columns in indexes:
                    if amcheck:
                        c.execute("SAVEPOINT index_check")
                        try:
                            c.execute(check, (index_name,))
                            c.execute("RELEASE SAVEPOINT index_check")
                        except psycopg.Error as error:
                            c.execute("ROLLBACK TO SAVEPOINT index_check")
                            problems.append(f"index {index_name} of {table_name}: {_one_line(error)}")
                        continue
                    table = sql.Identifier(table_name)
                    c.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; "
                              "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = on")
                    c.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
                    by_scan = c.fetchone()[0]
                    c.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = on; "
                              "SET LOCAL enable_indexonlyscan = on")
                    # Ordered by the index's columns, with the index the only way there.
                    c.execute(sql.SQL("SELECT count(*) FROM (SELECT {cols} FROM {t} ORDER BY {cols}) s")
                              .format(cols=sql.SQL(columns), t=table))
                    by_index = c.fetchone()[0]
                    if by_scan != by_index:
                        problems.append(f"index {index_name} of {table_name}: {by_index} rows through the "
                                        f"index, {by_scan} in the table")
            method = ("PostgreSQL amcheck bt_index_check(heapallindexed) on every B-tree index" if amcheck
                      else "PostgreSQL counts through each index against a table scan (install amcheck "
                           "for the full check)")
            return method, problems

        return self._retrying("check the store's integrity", read)

    # -- one batch at a time across processes -----------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's batch lock, across every process sharing the store.

        consumers/kafka/group_projector.py holds it around read-compute-write
        of each batch: project_batch reads stored versions and licenses before
        its commit transaction, and a license report (its own partition) can
        recompute traces another member is applying at the same moment, so
        two members computing at once could each miss the other's half.
        A PostgreSQL session advisory lock on a connection of its own (the
        pool's connections come and go).  Re-entrant within one thread; a
        second thread sharing this object waits for the first (at most
        LOCK_TIMEOUT_S, like a second process), so one thread leaving never
        releases the lock under another.
        """
        depth = self._exclusive_depth
        if depth:
            self._exclusive_here.depth = depth + 1
            try:
                yield
            finally:
                self._exclusive_here.depth = depth
            return
        if not self._exclusive_thread_lock.acquire(timeout=LOCK_TIMEOUT_S):
            raise StoreUnavailable(
                f"projection store {self.where}: stayed locked by another thread's batch for {LOCK_TIMEOUT_S} s"
            )
        try:
            self._acquire_batch_lock()
            self._exclusive_here.depth = 1
            try:
                yield
            finally:
                self._exclusive_here.depth = 0
                self._release_batch_lock()
        finally:
            self._exclusive_thread_lock.release()

    @property
    def _exclusive_depth(self) -> int:
        """How deep the calling thread is inside ``exclusive()`` (0: outside)."""
        return getattr(self._exclusive_here, "depth", 0)

    def _check_batch_lock_held(self, c: Any) -> None:
        """Inside ``exclusive()``, refuse to commit if the batch lock is gone.

        The advisory lock lives on a connection of its own; if that
        connection dropped, the server released the lock and another member
        may be computing the same traces.  Committing then could lose an
        update, so the batch is rolled back (and re-read) instead.

        A fencing token closes the gap between this check and COMMIT: each
        holder, on taking the lock, increments ``batch_epoch`` in store_meta
        (``_acquire_batch_lock``).  Here the row is read FOR UPDATE and must
        still be the epoch we took: if another holder took the lock since,
        the epoch moved and we roll back; if not, its increment waits on our
        row lock until we commit, so it reads only after our rows are there.
        """
        if not self._exclusive_depth:
            return
        c.execute("SELECT value FROM store_meta WHERE key = 'batch_epoch' FOR UPDATE")
        row = c.fetchone()
        epoch = int(row[0]) if row is not None else None
        lost = epoch is None or epoch != self._batch_epoch
        if lost:
            _log.warning("projection store %s: batch epoch is %s, we took %s: another projector took the "
                         "batch lock", self.where, epoch, self._batch_epoch)
        else:
            conn = self._lock_conn
            pid = conn.info.backend_pid if conn is not None and not conn.closed else None
            c.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s",
                (pid,),
            )
            lost = pid is None or c.fetchone()[0] == 0
        if lost:
            self._drop_lock_connection()
            raise StoreUnavailable(
                f"projection store {self.where}: the batch lock's connection was lost; "
                f"batch not committed (it will be read again)"
            )

    def _acquire_batch_lock(self) -> None:
        def take() -> None:
            try:
                if self._lock_conn is None or self._lock_conn.closed:
                    self._drop_lock_connection()
                    self._lock_conn = psycopg.connect(**self._connect)
                    self._lock_conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                    self._lock_conn.execute(sql.SQL("SET lock_timeout = {}").format(
                        sql.Literal(f"{LOCK_TIMEOUT_S}s")))
                    self._lock_conn.execute(sql.SQL("SET application_name = {}").format(
                        sql.Literal(application_name(self.schema))))
                self._lock_conn.execute("SELECT pg_advisory_lock(%s)", (self._batch_lock,))
                # The fencing token (see _check_batch_lock_held), committed at
                # once (autocommit).  Waits for a previous holder's commit
                # transaction still holding the row.
                row = self._lock_conn.execute(
                    "INSERT INTO store_meta VALUES ('batch_epoch', '1') ON CONFLICT (key) DO UPDATE "
                    "SET value = (store_meta.value::bigint + 1)::text RETURNING value"
                ).fetchone()
                self._batch_epoch = int(row[0])
            except psycopg.errors.LockNotAvailable:
                self._drop_lock_connection()  # we may hold the advisory lock already
                raise StoreUnavailable(
                    f"projection store {self.where}: stayed locked by another projector for {LOCK_TIMEOUT_S} s"
                ) from None
            except psycopg.Error:
                self._drop_lock_connection()  # never keep the lock on a failed take
                raise

        retry(
            take, attempts_max=self.attempts_max, wait_s=self.retry_wait_s, backoff=2,
            retryable=lambda error: isinstance(error, psycopg.OperationalError),
            exhausted=lambda error, attempt: StoreUnavailable(
                f"projection store {self.where}: could not take the batch lock in {attempt} "
                f"attempts; last error: {_one_line(error)}"),
        )

    def _release_batch_lock(self) -> None:
        self._batch_epoch = None
        try:
            if self._lock_conn is not None:
                self._lock_conn.execute("SELECT pg_advisory_unlock(%s)", (self._batch_lock,))
        except psycopg.Error:
            self._drop_lock_connection()  # the server releases a session lock with its session

    def _drop_lock_connection(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            except psycopg.Error:
                pass
            self._lock_conn = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drop_lock_connection()
            self.datastore.close()


# -- the hot queries, as statements (tests EXPLAIN exactly these) ---------------------


def lots_sql(*, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> tuple[str, list[str]]:
    return sql_store.lots_sql(POSTGRES, trace_id=trace_id, lot_id=lot_id, holder=holder)


def standing_alerts_sql(as_of: datetime, *, party: str | None = None, trace_id: str | None = None,
                        severity: str | None = None) -> tuple[str, list[Any]]:
    return sql_store.standing_alerts_sql(POSTGRES, as_of, party=party, trace_id=trace_id, severity=severity)


def _lock_key(purpose: str, schema: str) -> int:
    """A 64-bit advisory lock key per purpose and schema (stores in other
    schemas of the same database do not wait for each other)."""
    digest = hashlib.sha256(f"ledger-projections|{purpose}|{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def application_name(schema: str) -> str:
    """What a store's connections call themselves in pg_stat_activity."""
    return f"ledger-projections:{schema}"[:63]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
