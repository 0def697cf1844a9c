"""Projection store on PostgreSQL, built on eventsourcing's PostgresTrackingRecorder.

The production store.  Same tables, same spellings and the same semantics as
projections/sqlite_store.py -- tests/contract/test_projection_store.py runs
one suite on both -- so a replay into either gives the same fingerprint:

- decimals are TEXT in their canonical spelling and times fixed-width UTC
  text, exactly as projections/rows.py writes them; every text column uses
  the "C" collation, so ORDER BY and ``due_at <= ...`` compare bytes, as
  SQLite does, whatever locale the server was initialised with;
- each batch's rows, its alert journal entries and its tracking records are
  written in one transaction; a tracking that is not beyond the stored one
  raises eventsourcing's IntegrityError and the whole batch rolls back, so a
  record is never counted twice, even with several projector replicas.

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
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.parties import RegisteredParty
from projections.sql_common import (
    CLAIMS_INDEX,
    filters,
    group_claims,
    group_unread,
    party_from_row,
    party_row,
    step_dict,
    sweep_due,
    value_marks,
)
from projections.journal import Status, journal_row, status_row, transitions
from projections.rows import LOT_COLUMNS, STEP_COLUMNS, ts
from projections.store import ProjectedBatch, ProjectionStore, StoreUnavailable, fresh_mark

__all__ = [
    "PostgresProjectionStore",
    "STORE_SCHEMA_VERSION",
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
LOG_IDENTITY_KEY = "log_identity:"  # store_meta key prefix, then the log's name
# The read models whose indexes the integrity check compares with the tables.
CHECKED_TABLES = ("store_meta", "reports", "lots", "alert_steps", "licenses", "alert_status",
                  "alert_journal", "dead_letters", "tracking")

_log = logging.getLogger(__name__)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_T = 'TEXT COLLATE "C"'

_LOT_DDL = ", ".join(f"{c} {_T}" for c in LOT_COLUMNS)
_STEP_DDL = ", ".join(f"{c} {_T}" for c in STEP_COLUMNS)

# Unqualified names: every connection's search_path is the store's schema.
_TABLES = [
    f"CREATE TABLE IF NOT EXISTS store_meta (key {_T} PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS reports (
        trace_id {_T} NOT NULL, event_id {_T} NOT NULL, digest {_T} NOT NULL,
        recorded_at {_T} NOT NULL, payload TEXT NOT NULL,
        PRIMARY KEY (trace_id, event_id, digest))""",
    CLAIMS_INDEX,
    f"CREATE TABLE IF NOT EXISTS lots ({_LOT_DDL}, PRIMARY KEY (trace_id, lot_id))",
    "CREATE INDEX IF NOT EXISTS lots_by_lot ON lots (lot_id)",
    "CREATE INDEX IF NOT EXISTS lots_by_holder ON lots (holder)",
    "CREATE INDEX IF NOT EXISTS lots_by_license ON lots (license_id)",
    f"CREATE TABLE IF NOT EXISTS alert_steps ({_STEP_DDL}, PRIMARY KEY (alert_id, due_at))",
    "CREATE INDEX IF NOT EXISTS steps_by_trace ON alert_steps (trace_id)",
    "CREATE INDEX IF NOT EXISTS steps_by_party ON alert_steps (party, due_at)",
    "CREATE INDEX IF NOT EXISTS steps_by_severity ON alert_steps (severity, due_at)",
    "CREATE INDEX IF NOT EXISTS steps_by_due ON alert_steps (due_at)",
    f"""CREATE TABLE IF NOT EXISTS licenses (
        license_id {_T} NOT NULL, event_id {_T} NOT NULL, digest {_T} NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (license_id, event_id, digest))""",
    f"""CREATE TABLE IF NOT EXISTS alert_status (
        alert_id {_T} PRIMARY KEY, state {_T} NOT NULL, kind {_T} NOT NULL,
        quantity {_T}, transitions INTEGER NOT NULL, trace_id {_T}, party {_T})""",
    f"""CREATE TABLE IF NOT EXISTS alert_journal (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, transition_id {_T} NOT NULL UNIQUE,
        alert_id {_T} NOT NULL, transition {_T} NOT NULL, at {_T} NOT NULL,
        kind {_T}, severity {_T}, trace_id {_T}, lot_id {_T}, party {_T},
        quantity {_T}, unit {_T}, message TEXT, due_at {_T})""",
    "CREATE INDEX IF NOT EXISTS journal_by_alert ON alert_journal (alert_id, seq)",
    f"""CREATE TABLE IF NOT EXISTS dead_letters (
        log_name {_T} NOT NULL, partition INTEGER NOT NULL, "offset" BIGINT NOT NULL,
        key TEXT, value BYTEA, error TEXT NOT NULL,
        PRIMARY KEY (log_name, partition, "offset"))""",
    # The party registry (ledger/parties.py): roles space-separated.
    f"""CREATE TABLE IF NOT EXISTS parties (
        party_id {_T} PRIMARY KEY, country {_T} NOT NULL, roles {_T} NOT NULL, name TEXT)""",
    "CREATE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters (key)",
]

_JOURNAL_KEYS = ("seq", "transition_id", "alert_id", "transition", "at", "kind", "severity",
                 "trace_id", "lot_id", "party", "quantity", "unit", "message", "due_at")
_LAST_KEYS = ("alert_id", "kind", "severity", "trace_id", "lot_id", "party", "quantity",
              "unit", "message", "due_at")
_DEAD_KEYS = ("log_name", "partition", "offset", "key", "value", "error")

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


class PostgresProjectionStore(PostgresTrackingRecorder, ProjectionStore):
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
            self.sql_create_statements.extend(sql.SQL(s) for s in _TABLES)  # type: ignore[arg-type]
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

    # -- connections ------------------------------------------------------------

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
        for attempt in range(1, self.attempts_max + 1):
            try:
                return operation()
            except (OperationalError, InterfaceError) as error:
                if attempt == self.attempts_max:
                    raise StoreUnavailable(
                        f"projection store {self.where}: could not {what} in {attempt} attempts; "
                        f"last error: {_one_line(error)}"
                    ) from error
                wait_s = self.retry_wait_s * 2 ** (attempt - 1)
                _log.warning("projection store %s: %s failed (%s); attempt %d of %d in %.1f s",
                             self.where, what, _one_line(error), attempt + 1, self.attempts_max, wait_s)
                time.sleep(wait_s)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writing ----------------------------------------------------------------

    def tracked_offsets(self, log_name: str) -> dict[int, int]:
        prefix = f"{log_name}#"

        def read() -> dict[int, int]:
            with self._transaction(commit=False) as c:
                c.execute(
                    "SELECT application_name, notification_id FROM tracking "
                    "WHERE starts_with(application_name, %s)",
                    (prefix,),
                )
                return {int(name[len(prefix):]): offset for name, offset in c.fetchall()}

        return self._retrying("read tracked offsets", read)

    def load_versions(self, trace_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        def read() -> dict[str, list[tuple[str, str]]]:
            out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
            with self._transaction(commit=False) as c:
                for chunk in _chunks(trace_ids):
                    c.execute("SELECT trace_id, payload, digest FROM reports WHERE trace_id = ANY(%s)", (chunk,))
                    for trace_id, payload, digest in c.fetchall():
                        out[trace_id].append((payload, digest))
            return out

        return self._retrying("load report versions", read)

    def event_claims(self, event_ids: list[str]) -> dict[str, list[tuple[str, str, datetime, str]]]:
        def read() -> dict[str, list[tuple[str, str, datetime, str]]]:
            rows: list[Any] = []
            with self._transaction(commit=False) as c:
                for chunk in _chunks(event_ids):
                    c.execute(
                        "SELECT event_id, trace_id, digest, recorded_at, payload::json->>'reporter' "
                        "FROM reports WHERE event_id = ANY(%s)",
                        (chunk,),
                    )
                    rows.extend(c.fetchall())
            return group_claims(rows)

        return self._retrying("load event claims", read)

    def commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        self._retrying("commit a batch", lambda: self._commit_batch(batch, trackings, clock))

    def _commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        with self._transaction(commit=True) as c:
            self._check_batch_lock_held(c)
            touched_alerts: set[str] = set()
            # Each trace's rows are replaced whole.  Set-based: the old rows of
            # every trace of the batch go first, then every new row, a few
            # statements per batch instead of six round trips per trace (a
            # trace appears once per batch; should one appear twice, the later
            # rows win).
            last = {rows.trace_id: rows for rows in batch.traces}
            for chunk in _chunks(sorted(last)):
                c.execute("SELECT alert_id FROM alert_steps WHERE trace_id = ANY(%s)", (chunk,))
                touched_alerts.update(r[0] for r in c.fetchall())
                c.execute("DELETE FROM lots WHERE trace_id = ANY(%s)", (chunk,))
                c.execute("DELETE FROM alert_steps WHERE trace_id = ANY(%s)", (chunk,))
            versions = [(rows.trace_id, *v) for rows in batch.traces for v in rows.new_versions]
            if versions:
                c.executemany(
                    # A re-sent report recorded earlier than the stored copy
                    # replaces it (ledger.trace.Outcome.EARLIER_COPY).
                    "INSERT INTO reports VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (trace_id, event_id, digest) DO UPDATE "
                    "SET recorded_at = EXCLUDED.recorded_at, payload = EXCLUDED.payload "
                    "WHERE EXCLUDED.recorded_at < reports.recorded_at",
                    versions,
                )
            lots = [lot for rows in last.values() for lot in rows.lots]
            if lots:
                c.executemany(f"INSERT INTO lots VALUES ({value_marks(LOT_COLUMNS, '%s')})", lots)
            steps = [step for rows in last.values() for step in rows.steps]
            if steps:
                c.executemany(f"INSERT INTO alert_steps VALUES ({value_marks(STEP_COLUMNS, '%s')})", steps)
            touched_alerts.update(step[0] for rows in batch.traces for step in rows.steps)
            if batch.licenses:
                c.executemany("INSERT INTO licenses VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                              batch.licenses)
            if batch.dead_letters:
                c.executemany(
                    "INSERT INTO dead_letters VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(d.log_name, d.partition, d.offset, d.key, d.value, d.error) for d in batch.dead_letters],
                )
            self._journal(c, touched_alerts, clock)
            c.execute("INSERT INTO store_meta VALUES ('writer_mark', %s) ON CONFLICT (key) "
                      "DO UPDATE SET value = EXCLUDED.value", (batch.writer_mark or fresh_mark(),))
            for tracking in trackings:
                # Raises IntegrityError, rolling back the whole batch, unless
                # this offset is beyond the one stored: no double counting.
                self._insert_tracking(c, tracking)  # type: ignore[arg-type]

    def writer_mark(self) -> str | None:
        def read() -> str | None:
            with self._transaction(commit=False) as c:
                c.execute("SELECT value FROM store_meta WHERE key = 'writer_mark'")
                row = c.fetchone()
                return row[0] if row else None

        return self._retrying("read the writer mark", read)

    def sweep(self, clock: datetime) -> int:
        def run() -> int:
            with self._transaction(commit=True) as c:
                # One sweeper at a time: replicas sweeping together would
                # otherwise both read the same "previous" status.
                c.execute("SELECT pg_advisory_xact_lock(%s)", (self._journal_lock,))
                return sweep_due(c, clock, self._journal, "%s")

        return self._retrying("sweep due alerts", run)

    def refresh_statistics(self) -> None:
        def run() -> None:
            with self._transaction(commit=True) as c:
                c.execute("ANALYZE reports, lots, alert_steps, licenses, alert_status, alert_journal")

        self._retrying("refresh planner statistics", run)

    def _journal(self, c: psycopg.Cursor[Any], alert_ids: set[str], clock: datetime) -> int:
        if not alert_ids:
            return 0
        # Held to commit: journal sequence numbers are handed out in commit
        # order, and the status read below is the latest committed one.
        c.execute("SELECT pg_advisory_xact_lock(%s)", (self._journal_lock,))
        now = ts(clock)
        ids = sorted(alert_ids)
        previous: dict[str, Status] = {}
        standing: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            c.execute(
                "SELECT alert_id, state, kind, quantity, transitions FROM alert_status WHERE alert_id = ANY(%s)",
                (chunk,),
            )
            for row in c.fetchall():
                previous[row[0]] = Status(*row)
            c.execute(
                f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps s WHERE alert_id = ANY(%s) "
                f"AND due_at = (SELECT MAX(due_at) FROM alert_steps m "
                f"WHERE m.alert_id = s.alert_id AND m.due_at <= %s)",
                (chunk, now),
            )
            for row in c.fetchall():
                step = dict(zip(STEP_COLUMNS, row))
                if step["quantity"] is None or step["quantity"] != "0":
                    standing[step["alert_id"]] = step
        last_known = self._last_journaled(c, [i for i in previous if i not in standing])
        changes = transitions(previous, standing, last_known)
        for t in changes:
            c.execute(
                "INSERT INTO alert_journal (transition_id, alert_id, transition, at, kind, "
                "severity, trace_id, lot_id, party, quantity, unit, message, due_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (transition_id) DO NOTHING",
                journal_row(t, now),
            )
            c.execute(
                "INSERT INTO alert_status VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (alert_id) "
                "DO UPDATE SET state = EXCLUDED.state, kind = EXCLUDED.kind, "
                "quantity = EXCLUDED.quantity, transitions = EXCLUDED.transitions",
                status_row(t),
            )
        return len(changes)

    def _last_journaled(self, c: psycopg.Cursor[Any], alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(alert_ids):
            c.execute(
                f"SELECT {', '.join(_LAST_KEYS)} FROM alert_journal j WHERE alert_id = ANY(%s) AND seq = "
                f"(SELECT MAX(seq) FROM alert_journal k WHERE k.alert_id = j.alert_id)",
                (chunk,),
            )
            for row in c.fetchall():
                out[row[0]] = dict(zip(_LAST_KEYS, row))
        return out

    # -- queries ----------------------------------------------------------------

    def lots(self, *, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> list[dict[str, Any]]:
        query, params = lots_sql(trace_id=trace_id, lot_id=lot_id, holder=holder)
        rows = self._read("read lots", query, params)
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def standing_alerts(self, as_of: datetime, *, party: str | None = None,
                        trace_id: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        query, params = standing_alerts_sql(as_of, party=party, trace_id=trace_id, severity=severity)
        return [step_dict(row) for row in self._read("read standing alerts", query, params)]

    def all_versions(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for trace_id, payload, digest in self._read(
            "read report versions", "SELECT trace_id, payload, digest FROM reports ORDER BY trace_id", ()
        ):
            out.setdefault(trace_id, []).append((payload, digest))
        return out

    def licenses(self) -> list[tuple[str, str]]:
        rows = self._read("read licenses",
                          "SELECT payload, digest FROM licenses ORDER BY license_id, event_id, digest", ())
        return [(p, d) for p, d in rows]

    def load_licenses(self, license_ids: list[str]) -> list[tuple[str, str]]:
        out: list[Any] = []
        for chunk in _chunks(sorted(set(license_ids))):
            out.extend(self._read(
                "read licenses",
                "SELECT license_id, event_id, digest, payload FROM licenses WHERE license_id = ANY(%s)",
                (chunk,),
            ))
        return [(payload, digest) for _l, _e, digest, payload in sorted(out)]

    def trace_lots(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        rows: list[Any] = []
        for chunk in _chunks(sorted(set(trace_ids))):
            rows.extend(self._read(
                "read the lots of traces",
                f"SELECT {', '.join(LOT_COLUMNS)} FROM lots WHERE trace_id = ANY(%s)",
                (chunk,),
            ))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def license_lots(self, license_ids: list[str]) -> list[dict[str, Any]]:
        rows: list[Any] = []
        for chunk in _chunks(sorted(set(license_ids))):
            rows.extend(self._read(
                "read license lots",
                f"SELECT {', '.join(LOT_COLUMNS)} FROM lots WHERE license_id = ANY(%s)",
                (chunk,),
            ))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def trace_ids_for(self, *, lot_or_trace: str) -> list[str]:
        rows = self._read(
            "find traces",
            "SELECT trace_id FROM reports WHERE trace_id = %s "
            "UNION SELECT trace_id FROM lots WHERE lot_id = %s ORDER BY 1",
            (lot_or_trace, lot_or_trace),
        )
        return [r[0] for r in rows]

    def alert_step_times(self, alert_ids: list[str]) -> dict[str, list[tuple[str, str | None]]]:
        out: dict[str, list[tuple[str, str | None]]] = {}
        for chunk in _chunks(sorted(set(alert_ids))):
            for alert_id, due_at, quantity in self._read(
                "read alert steps",
                "SELECT alert_id, due_at, quantity FROM alert_steps WHERE alert_id = ANY(%s) ORDER BY alert_id, due_at",
                (chunk,),
            ):
                out.setdefault(alert_id, []).append((due_at, quantity))
        return out

    def journal(self, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._read(
            "read the alert journal",
            f"SELECT {', '.join(_JOURNAL_KEYS)} FROM alert_journal WHERE seq > %s ORDER BY seq LIMIT %s",
            (after_seq, limit),
        )
        return [dict(zip(_JOURNAL_KEYS, row)) for row in rows]

    # -- the party registry (ledger.ports.PartyRegistry) ---------------------------

    def registered_parties(self) -> list[RegisteredParty]:
        rows = self._read("read the party registry",
                          "SELECT party_id, country, roles, name FROM parties ORDER BY party_id", ())
        return [party_from_row(row) for row in rows]

    def register_parties(self, parties: Sequence[RegisteredParty]) -> None:
        def write() -> None:
            with self._transaction(commit=True) as c:
                c.executemany(
                    "INSERT INTO parties VALUES (%s, %s, %s, %s) ON CONFLICT (party_id) DO UPDATE SET "
                    "country = excluded.country, roles = excluded.roles, name = excluded.name",
                    [party_row(p) for p in parties],
                )

        self._retrying("register parties", write)

    def remove_party(self, party_id: str) -> bool:
        def write() -> bool:
            with self._transaction(commit=True) as c:
                c.execute("DELETE FROM parties WHERE party_id = %s RETURNING party_id", (party_id,))
                return bool(c.fetchall())

        return self._retrying("remove a party", write)

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self._read(
            "read dead letters",
            'SELECT log_name, partition, "offset", key, value, error FROM dead_letters '
            'ORDER BY log_name, partition, "offset"',
            (),
        )
        return [dict(zip(_DEAD_KEYS, row)) for row in rows]

    def unread_records(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        def read() -> dict[str, list[tuple[str, str]]]:
            rows: list[Any] = []
            with self._transaction(commit=False) as c:
                for chunk in _chunks(keys):
                    c.execute("SELECT key, value, error FROM dead_letters "
                              "WHERE key = ANY(%s) AND error NOT LIKE 'quarantined:%%'", (chunk,))
                    rows.extend(c.fetchall())
            return group_unread(rows)

        return self._retrying("load dead letters", read)

    def fingerprint(self) -> dict[str, str]:
        # The same statements and the same row encoding as the SQLite store,
        # so equal read models give equal digests across the two stores.
        queries = {
            "reports": "SELECT trace_id, event_id, digest, payload FROM reports ORDER BY 1, 2, 3",
            "lots": f"SELECT {', '.join(LOT_COLUMNS)} FROM lots ORDER BY trace_id, lot_id",
            "alert_steps": f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps ORDER BY alert_id, due_at",
            "licenses": "SELECT license_id, event_id, digest, payload FROM licenses ORDER BY 1, 2, 3",
        }

        def read() -> dict[str, str]:
            out = {}
            # One REPEATABLE READ snapshot, so the digests describe one state.
            with self.datastore.get_connection() as conn:
                with conn.transaction(force_rollback=True):
                    c = conn.cursor(row_factory=tuple_row)
                    c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    for name, query in queries.items():
                        c.execute(query)
                        digest = hashlib.sha256()
                        for row in c:
                            digest.update(json.dumps(list(row), default=str).encode())
                            digest.update(b"\n")
                        out[name] = digest.hexdigest()
            return out

        return self._retrying("fingerprint the read models", read)

    def log_identity(self, log_name: str) -> str | None:
        rows = self._read("read the log identity", "SELECT value FROM store_meta WHERE key = %s",
                          (LOG_IDENTITY_KEY + log_name,))
        return rows[0][0] if rows else None

    def record_log_identity(self, log_name: str, identity: str) -> str:
        def write() -> str:
            with self._transaction(commit=True) as c:
                c.execute("INSERT INTO store_meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                          (LOG_IDENTITY_KEY + log_name, identity))
                c.execute("SELECT value FROM store_meta WHERE key = %s", (LOG_IDENTITY_KEY + log_name,))
                return c.fetchone()[0]

        return self._retrying("record the log identity", write)

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

    def _read(self, what: str, query: str, params: Any) -> list[Any]:
        def read() -> list[Any]:
            with self._transaction(commit=False) as c:
                c.execute(query, params)
                return c.fetchall()

        return self._retrying(what, read)

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
        for attempt in range(1, self.attempts_max + 1):
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
                return
            except psycopg.errors.LockNotAvailable:
                self._drop_lock_connection()  # we may hold the advisory lock already
                raise StoreUnavailable(
                    f"projection store {self.where}: stayed locked by another projector for {LOCK_TIMEOUT_S} s"
                ) from None
            except psycopg.OperationalError as error:
                self._drop_lock_connection()
                if attempt == self.attempts_max:
                    raise StoreUnavailable(
                        f"projection store {self.where}: could not take the batch lock in {attempt} "
                        f"attempts; last error: {_one_line(error)}"
                    ) from error
                time.sleep(self.retry_wait_s * 2 ** (attempt - 1))
            except psycopg.Error:
                self._drop_lock_connection()  # never keep the lock on a failed take
                raise

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
    where, params = filters("%s", trace_id=trace_id, lot_id=lot_id, holder=holder)
    return f"SELECT {', '.join(LOT_COLUMNS)} FROM lots {where} ORDER BY trace_id, lot_id", params


def standing_alerts_sql(as_of: datetime, *, party: str | None = None, trace_id: str | None = None,
                        severity: str | None = None) -> tuple[str, list[Any]]:
    where, params = filters("%s", party=party, trace_id=trace_id, severity=severity, prefix="s.")
    # "s.due_at <= as_of" is implied by the subquery; said outright it lets
    # the planner use the (party, due_at) and (severity, due_at) indexes.
    where = (where + " AND" if where else "WHERE") + (
        " s.due_at <= %s"
        " AND s.due_at = (SELECT MAX(due_at) FROM alert_steps m WHERE m.alert_id = s.alert_id AND m.due_at <= %s)"
        " AND (s.quantity IS NULL OR s.quantity <> '0')"
    )
    query = (
        f"SELECT {', '.join('s.' + col for col in STEP_COLUMNS)} FROM alert_steps s {where} "
        f"ORDER BY s.trace_id, s.lot_id, s.kind, s.alert_id"
    )
    when = ts(as_of)
    return query, [*params, when, when]


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + ANY_MAX] for i in range(0, len(items), ANY_MAX)]


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
