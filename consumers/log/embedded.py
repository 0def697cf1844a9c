"""The embedded event log: one durable SQLite file, append-only.

The default log: it needs nothing installed.  One partition; the offset is
the row's position.  Idempotent on (event id, content digest): a re-sent
report is a no-op, reported as "duplicate"; a second report with the same
event id and other content is kept and reported as "conflict".
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from consumers.sqlite_file import open_wal_file
from ledger.ports import HEADER_DIGEST, AppendReceipt, EventLog, KeyRange, LogRecord, LogUnavailable, RejectRow

__all__ = ["EmbeddedLog", "LOG_SCHEMA_VERSION"]

LOG_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
READ_BY_KEY_ROWS = 1000  # rows fetched at a time from the sorted pass
LOOKUP_IDS_MAX = 500  # event ids per lookup statement (SQLite allows 32,766 parameters)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # offset is an alias of the rowid: it only grows (AUTOINCREMENT never
    # reuses one, even after the last row is gone), which tracking relies on.
    """CREATE TABLE IF NOT EXISTS events (
        offset INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        UNIQUE (event_id, digest)
    )""",
    # Lookups by event id use the UNIQUE (event_id, digest) index, whose
    # prefix is the event id (a covering index for the duplicate check).  A
    # separate index on event_id alone, which earlier logs have, only cost
    # every append a third B-tree to write and sync; it is dropped.
    "DROP INDEX IF EXISTS events_by_event_id",
    # Rejected input, kept so nothing a party sent is silently dropped.
    """CREATE TABLE IF NOT EXISTS rejects (
        source TEXT NOT NULL,
        line INTEGER NOT NULL,
        raw TEXT NOT NULL,
        problems TEXT NOT NULL,
        rejected_at TEXT NOT NULL,
        PRIMARY KEY (source, line, raw)
    )""",
]


# A record's columns as a reader takes them.  The casts keep a row someone
# edited by hand readable (sqlite3's replace() leaves the value TEXT), so that
# `ledger verify` can say it is damaged instead of the reader failing on it.
_RECORD_COLUMNS = "offset, key, CAST(value AS BLOB), CAST(digest AS TEXT)"


class EmbeddedLog(EventLog):
    name = "embedded"
    first_offset = 1  # AUTOINCREMENT's first; never reused, never skipped (consumers/log_check.py)
    validated_on_append = True  # only ingest and the SDK append, after validating (consumers/log_check.py)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            # FULL: a report acknowledged as appended survives power loss.
            self._db = open_wal_file(self.path, busy_timeout_s=BUSY_TIMEOUT_MS / 1000, synchronous="FULL")
            with self._transaction():
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._check_schema_version()
        except (sqlite3.Error, OSError) as error:  # OSError: the directory cannot be made
            raise LogUnavailable(f"embedded log {str(self.path)!r}: {error}") from error

    def _transaction(self) -> "_Tx":
        return _Tx(self._db)

    def _check_schema_version(self) -> None:
        row = self._db.execute("SELECT value FROM log_meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO log_meta VALUES ('schema_version', ?)", (str(LOG_SCHEMA_VERSION),)
            )
        elif int(row[0]) != LOG_SCHEMA_VERSION:
            raise LogUnavailable(
                f"embedded log {str(self.path)!r} has schema version {row[0]}, "
                f"this ledger reads version {LOG_SCHEMA_VERSION}"
            )
        # The log's identity, written once when the file is made (or, for a
        # log made before identities, when this ledger first opens it).  A
        # store records it at its first projection: a log lost and made
        # again gets another one, and the store refuses it.
        self._db.execute("INSERT OR IGNORE INTO log_meta VALUES ('log_id', ?)", (uuid.uuid4().hex,))
        self._identity = self._db.execute("SELECT value FROM log_meta WHERE key='log_id'").fetchone()[0]

    def identity(self) -> str | None:
        return self._identity

    def append(self, records: Sequence[tuple[str, str, str, bytes]]) -> list[AppendReceipt]:
        try:
            return self._append(records)
        except sqlite3.IntegrityError:
            raise  # a record that breaks the table's rules: the caller's error, not the log's
        except sqlite3.DatabaseError as error:  # a full disk, an I/O error: nothing of this batch is written
            raise self._unwritable(error) from error

    def _unwritable(self, error: sqlite3.Error) -> LogUnavailable:
        advice = ("free some space and run the same command again: every batch already appended is kept, "
                  "and a report appended twice is a no-op" if "full" in str(error) else
                  "`ledger verify` checks the log")
        return LogUnavailable(f"embedded log {str(self.path)!r}: cannot append: {error}; {advice}")

    def _append(self, records: Sequence[tuple[str, str, str, bytes]]) -> list[AppendReceipt]:
        receipts = []
        with self._transaction():
            # What the log already holds under these event ids, looked up once
            # per chunk rather than once per record; kept current as the batch
            # is decided, so a report repeated within one batch is a duplicate.
            known: dict[str, dict[str, int]] = {}
            ids = sorted({r[0] for r in records})
            for start in range(0, len(ids), LOOKUP_IDS_MAX):
                chunk = ids[start : start + LOOKUP_IDS_MAX]
                rows = self._db.execute(
                    f"SELECT event_id, digest, MIN(offset) FROM events WHERE event_id IN "
                    f"({','.join('?' * len(chunk))}) GROUP BY event_id, digest",
                    chunk,
                )
                for event_id, digest, offset in rows:
                    known.setdefault(event_id, {})[digest] = offset
            # The new rows are written by one statement, each with its offset
            # given: the next after the highest ever used (sqlite_sequence is
            # current inside this write transaction, which holds the lock), so
            # offsets still only grow and are the ones AUTOINCREMENT would give.
            offset = self._last_offset()
            new_rows = []
            for event_id, digest, key, value in records:
                versions = known.setdefault(event_id, {})
                if digest in versions:
                    receipts.append(AppendReceipt(event_id, "duplicate", 0, versions[digest]))
                    continue
                offset += 1
                outcome = "conflict" if versions else "accepted"
                versions[digest] = offset
                new_rows.append((offset, event_id, digest, key, value))
                receipts.append(AppendReceipt(event_id, outcome, 0, offset))
            if new_rows:
                self._db.executemany(
                    "INSERT INTO events (offset, event_id, digest, key, value) VALUES (?, ?, ?, ?, ?)",
                    new_rows,
                )
        return receipts

    def _last_offset(self) -> int:
        """The highest offset ever given (0 if none): rows may be gone, the offset is not reused."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        return row[0] if row else 0

    def partitions(self) -> list[int]:
        return [0]

    def read(self, partition: int, start_offset: int, limit: int) -> list[LogRecord]:
        if partition != 0:
            raise ValueError(f"the embedded log has one partition (0), not {partition}")
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM events WHERE offset >= ? ORDER BY offset LIMIT ?",
            (start_offset, limit),
        ).fetchall()
        # The digest the ledger computed at ingest rides along as a header, as
        # on Kafka, so a reader need not compute it again.
        return [LogRecord(0, offset, key, bytes(value), ((HEADER_DIGEST, digest.encode()),))
                for offset, key, value, digest in rows]

    reads_by_key = True

    def read_by_key(self, below: dict[int, int], keys: KeyRange | None = None) -> Iterator[LogRecord]:
        """License reports first, then each key's records together, in offset
        order within a key: one sorted pass over the table (SQLite sorts in
        temporary files beyond its cache, so memory stays bounded).  With
        ``keys``, the license reports and the records of the keys in that
        range (``key_ranges``)."""
        where, params = "", ()
        if keys is not None:
            first, end = keys
            where = " AND (substr(key, 1, 8) = 'license:' OR (key >= ?" + (" AND key < ?))" if end else "))")
            params = (first, end) if end else (first,)
        cursor = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM events WHERE offset < ?{where} "
            "ORDER BY substr(key, 1, 8) != 'license:', key, offset",
            (below.get(0, 0), *params),
        )
        while rows := cursor.fetchmany(READ_BY_KEY_ROWS):
            for offset, key, value, digest in rows:
                yield LogRecord(0, offset, key, bytes(value), ((HEADER_DIGEST, digest.encode()),))

    def key_ranges(self, below: dict[int, int], parts: int) -> list[KeyRange]:
        """The keys of the records below ``below``, license reports apart,
        cut into at most ``parts`` contiguous ranges (first key, end key
        excluded; None: no end) of about as many records each, never
        splitting a key: each range is one worker's share of a rebuild
        (consumers/parallel_rebuild.py)."""
        counts = self._db.execute(
            "SELECT key, COUNT(*) FROM events WHERE offset < ? AND substr(key, 1, 8) != 'license:' "
            "GROUP BY key ORDER BY key", (below.get(0, 0),)).fetchall()
        total = sum(n for _key, n in counts)
        if not counts:
            return []
        firsts, seen = [counts[0][0]], 0
        for key, n in counts:
            if seen >= total * len(firsts) / parts and key != firsts[-1]:
                firsts.append(key)
            seen += n
        return [(first, firsts[i + 1] if i + 1 < len(firsts) else None) for i, first in enumerate(firsts)]

    @contextlib.contextmanager
    def commits_watched(self) -> Iterator[Callable[[], bool]]:
        """Inside the block, a check that says whether anyone has committed
        to the log since the block began: SQLite's ``PRAGMA data_version``
        on a connection of its own.  A rebuild whose workers read the log in
        snapshots of their own knows by it that they read what the check of
        the stored digests read (consumers/parallel_rebuild.py)."""
        watcher = sqlite3.connect(self.path, isolation_level=None)
        try:
            def version() -> int:
                return int(watcher.execute("PRAGMA data_version").fetchone()[0])

            first = version()
            yield lambda: version() != first
        finally:
            watcher.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        # A read transaction: in WAL mode it reads one state of the file from
        # its first read to its end, while appends go on beside it (they are
        # not seen; the WAL cannot be checkpointed past it meanwhile).
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.in_transaction:  # an I/O error may have ended it already
                self._db.execute("COMMIT")  # it wrote nothing

    def end_offsets(self) -> dict[int, int]:
        return {0: self._last_offset() + 1}

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # -- rejected input -------------------------------------------------------

    def keep_rejects(self, rejects: Sequence[RejectRow]) -> int:
        """Keep these rejected lines; a re-run adds no copies."""
        try:
            with self._transaction():
                before = self._db.total_changes
                self._db.executemany("INSERT OR IGNORE INTO rejects VALUES (?, ?, ?, ?, ?)", rejects)
                return self._db.total_changes - before
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as error:
            raise self._unwritable(error) from error

    def rejects(self, limit: int = 1000) -> list[RejectRow]:
        return [RejectRow(*row) for row in self._db.execute(
            f"SELECT {', '.join(RejectRow._fields)} FROM rejects "
            "ORDER BY rejected_at, source, line LIMIT ?",
            (limit,),
        )]

    def close(self) -> None:
        self._db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
