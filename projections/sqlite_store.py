"""Projection store on SQLite, built on eventsourcing's SQLiteTrackingRecorder.

Each batch's read-model rows and its tracking records are written in one
SQLite transaction (``self.datastore.transaction``), the library's pattern
for an exactly-once materialised view: after a crash the store holds either
the whole batch and its offsets, or neither.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore, SQLiteTrackingRecorder

from ledger.ports import KeyRange
from projections.batch_lock import path_lock
from projections.sql_store import Dialect, SQLProjectionStore, tables
from projections.store import ProjectedBatch, StoreUnavailable
from projections.wal_checkpointer import WalCheckpointer

__all__ = ["SQLiteProjectionStore", "STORE_SCHEMA_VERSION", "SQLITE", "ShareOutOfRange", "remove_store_files"]

STORE_SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 30
# The writer's own checkpoint, the backstop for the background one
# (projections/wal_checkpointer.py): 40 MB of WAL at most between checkpoints.
WAL_CHECKPOINT_PAGES = 10_000
IN_CLAUSE_MAX = 500  # SQLite's bound on host parameters is far above; keep statements small
INTEGRITY_PROBLEMS_MAX = 100  # PRAGMA integrity_check(N): lines reported at most


class _SQLite(Dialect):
    mark = "?"
    percent = "%"
    key_text = "TEXT"
    without_rowid = " WITHOUT ROWID"
    serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"
    big_int = "INTEGER"
    blob = "BLOB"
    ids_max = IN_CLAUSE_MAX
    reporter = "json_extract(payload, '$.reporter')"
    statistics = "PRAGMA optimize"  # analyzes what the queries so far would gain from
    due_bound_outright = False
    ignore_prefix = "INSERT OR IGNORE INTO"
    ignore_suffix = ""

    def ids_in(self, column: str, ids: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        # The same text for the same number of ids: sqlite3 reuses its prepared statement.
        return f"{column} IN ({','.join('?' * len(ids))})", tuple(ids)

    def starts_with(self, column: str, prefix: str) -> tuple[str, tuple[Any, ...]]:
        return f"substr({column}, 1, ?) = ?", (len(prefix), prefix)


SQLITE = _SQLite()
R = TypeVar("R")


class ShareOutOfRange(ValueError):
    """A share of a parallel rebuild holds a trace outside its range of keys."""


class _ProjectionConnections(SQLiteConnectionPool):
    """The library's connections, with ``synchronous=NORMAL``.

    In WAL mode a NORMAL commit is still atomic, and survives the process
    being killed; only a power loss or an OS crash may take back the last
    commits, rows and tracking together, and the projector then projects
    those records again from the log, which keeps ``synchronous=FULL``
    (consumers/log/embedded.py).  Alert transitions re-derived that way keep
    their ids (projections/journal.py), so a subscriber drops the copies.
    The WAL is copied back into the database by a thread beside the
    writer, after each commit (projections/wal_checkpointer.py); the
    commit past WAL_CHECKPOINT_PAGES pages, not SQLite's 1,000, does it
    itself only when that thread falls behind (measured, 50-record batches:
    a commit took 7.3 ms with SQLite's bound, 4.6 ms with this one).

    NORMAL saves the fsync of every commit.  On this machine's disk an
    fsync is cheap (about a millisecond) and the difference is within the
    noise; on a disk with slow flushes it is a batch's largest fixed cost.
    (The background copies sync the database once each, off the commit
    path: see projections/wal_checkpointer.py.)
    """

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        db = connection._sqlite_conn  # the library keeps it private
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        return connection


class SQLiteProjectionStore(SQLiteTrackingRecorder, SQLProjectionStore):
    """The SQL store (projections/sql_store.py) in one SQLite file.  Nothing
    is retried here: a "database is locked" reaches the projector, which
    backs off and projects the batch again (consumers/projector.py)."""

    dialect = SQLITE

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.where = self.path
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            datastore = SQLiteDatastore(self.path, lock_timeout=LOCK_TIMEOUT_S)
            datastore.pool = _ProjectionConnections(db_name=self.path, lock_timeout=LOCK_TIMEOUT_S)
            self._checkpointer = (None if SQLiteConnectionPool.detect_memory_mode(self.path)
                                  else WalCheckpointer(self.path))
            # close() stops the thread through this; so does a store dropped or
            # left open at exit, so the library's last connection can tidy the log.
            self._stop_checkpointer = weakref.finalize(
                self, self._checkpointer.close if self._checkpointer is not None else (lambda: None))
            super().__init__(datastore)
            self.create_table()
            self._check_schema_version()
        except StoreUnavailable:
            raise
        except Exception as error:  # sqlite3 errors arrive wrapped by the library
            advice = ""
            if "not a database" in str(error) or "malformed" in str(error):
                advice = (": it is not a projection store, or it is damaged; rebuild it from the log "
                          "(move it aside and run `ledger project`)")
            raise StoreUnavailable(f"projection store {self.path!r}: {error}{advice}") from error

    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + tables(SQLITE)

    def _check_schema_version(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT value FROM store_meta WHERE key='schema_version'")
            row = c.fetchone()
            if row is None:
                c.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
            elif int(row[0]) != STORE_SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"projection store {self.path!r} has schema version {row[0]}; this ledger "
                    f"writes version {STORE_SCHEMA_VERSION}: rebuild it with `ledger replay --replace`"
                )

    # -- connections, locks -----------------------------------------------------

    def _transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def _retrying(self, what: str, operation: Callable[[], R]) -> R:
        return operation()

    def _each_row(self, c: Any) -> Iterable[Any]:
        # The library's cursor wrapper can only fetch all rows at once; the
        # sqlite3 cursor inside it steps the statement one row at a time.
        return c.sqlite_cursor  # type: ignore[no-any-return]

    def _begin_batch(self, c: Any) -> None:
        _take_write_lock(c)

    def _begin_sweep(self, c: Any) -> None:
        _take_write_lock(c)

    def _committed(self) -> None:
        """After a commit: the background checkpoint copies the log when it next can."""
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """An flock on ``<path>.lock`` beside the file (projections/batch_lock.py)."""
        if not self.path or self.path == ":memory:":
            yield  # a store in this process's memory: nobody else can write it
            return
        with path_lock(self.path):
            yield

    def commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        try:
            super().commit_batch(batch, trackings, clock)
        except OperationalError as error:
            if "full" not in str(error):
                raise  # "locked": the projector retries (consumers/projector.py)
            raise StoreUnavailable(
                f"projection store {self.path!r}: cannot commit: {error}; free some space and run the same "
                f"command again (every batch already committed is kept, and nothing is counted twice)"
            ) from error

    def absorb(self, shares: Sequence[tuple[str | Path, KeyRange]]) -> None:
        """Copy the stores of a rebuild's shares into this one, in one
        transaction (consumers/parallel_rebuild.py): each share holds the
        rows of the traces whose keys are in its range, and what every share
        holds alike -- the license reports, their dead letters -- once.  The
        rows of the licenses themselves (``license:<id>``: ceilings counted
        across traces, which a share saw only part of) are left out, for the
        caller to count again over the whole store; so are the share's offsets.

        Refused (``ShareOutOfRange``), with nothing copied, when a share holds
        a trace outside its range: two shares may then hold one trace.
        """
        db = sqlite3.connect(self.path, isolation_level=None, timeout=LOCK_TIMEOUT_S)
        try:
            for i, (path, _keys) in enumerate(shares):
                db.execute(f"ATTACH DATABASE ? AS share{i}", (str(path),))
            for i, (_path, (first, end)) in enumerate(shares):
                outside, bounds = ("(trace_id < ? OR trace_id >= ?)", (first, end)) if end else ("trace_id < ?", (first,))
                stray = db.execute(
                    f"SELECT trace_id FROM share{i}.reports WHERE {outside} "
                    f"UNION ALL SELECT trace_id FROM share{i}.lots WHERE {outside} LIMIT 1", (*bounds, *bounds)).fetchone()
                if stray is not None:
                    raise ShareOutOfRange(f"trace {stray[0]!r} is outside the share's keys {first!r}..{end!r}")
            not_a_license = "(trace_id IS NULL OR substr(trace_id, 1, 8) != 'license:')"
            journal = ("transition_id, alert_id, transition, at, kind, severity, trace_id, lot_id, party, quantity, "
                       "unit, message, due_at")
            db.execute("BEGIN IMMEDIATE")
            for i in range(len(shares)):
                db.execute(f"INSERT INTO reports SELECT * FROM share{i}.reports")
                db.execute(f"INSERT INTO lots SELECT * FROM share{i}.lots")
                db.execute(f"INSERT INTO alert_steps SELECT * FROM share{i}.alert_steps WHERE {not_a_license}")
                db.execute(f"INSERT INTO alert_status SELECT * FROM share{i}.alert_status WHERE {not_a_license}")
                db.execute(f"INSERT INTO alert_journal ({journal}) SELECT {journal} FROM share{i}.alert_journal "
                           f"WHERE {not_a_license} ORDER BY seq")
                db.execute(f"INSERT OR IGNORE INTO licenses SELECT * FROM share{i}.licenses")
                db.execute(f"INSERT OR IGNORE INTO dead_letters SELECT * FROM share{i}.dead_letters")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        self._committed()

    def integrity_problems(self) -> tuple[str, list[str]]:
        # integrity_check, not quick_check: only the full check compares
        # every index with its table (a row missing from an index reads as
        # absent through that index, while a full scan still finds it).
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"PRAGMA integrity_check({INTEGRITY_PROBLEMS_MAX})")
            found = [str(row[0]) for row in c.fetchall()]
        return "SQLite PRAGMA integrity_check", [] if found == ["ok"] else found

    def close(self) -> None:
        self._stop_checkpointer()
        self.datastore.close()


def remove_store_files(path: str | Path) -> None:
    """A store file and every file SQLite and the batch lock keep beside it
    (its WAL, shared memory, rollback journal -- left by a process killed
    while it opened the store -- and projections/batch_lock.py's lock),
    for a scratch store or a share nobody will open again."""
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _take_write_lock(c: Any) -> None:
    """Make a write transaction write first.

    The library opens transactions with a deferred BEGIN.  A transaction that
    reads first and writes later holds a read snapshot; if another process
    commits in between, SQLite cannot upgrade it and fails at once with
    "database is locked" (the busy timeout does not apply).  Writing first
    takes the write lock and the snapshot together, so a second projector
    process waits its turn instead.
    """
    c.execute("UPDATE store_meta SET value = value WHERE key = 'schema_version'")

