"""Projection store on SQLite, built on eventsourcing's SQLiteTrackingRecorder.

Each batch's read-model rows and its tracking records are written in one
SQLite transaction (``self.datastore.transaction``), the library's pattern
for an exactly-once materialised view: after a crash the store holds either
the whole batch and its offsets, or neither.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from datetime import datetime
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore, SQLiteTrackingRecorder

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
from projections.wal_checkpointer import WalCheckpointer

__all__ = ["SQLiteProjectionStore", "STORE_SCHEMA_VERSION"]

STORE_SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 30
# The writer's own checkpoint, the backstop for the background one
# (projections/wal_checkpointer.py): 40 MB of WAL at most between checkpoints.
WAL_CHECKPOINT_PAGES = 10_000
IN_CLAUSE_MAX = 500  # SQLite's bound on host parameters is far above; keep statements small
INTEGRITY_PROBLEMS_MAX = 100  # PRAGMA integrity_check(N): lines reported at most
LOG_IDENTITY_KEY = "log_identity:"  # store_meta key prefix, then the log's name

_LOT_DDL = ", ".join(f"{c} TEXT" for c in LOT_COLUMNS)
_STEP_DDL = ", ".join(f"{c} TEXT" for c in STEP_COLUMNS)

_TABLES = [
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS reports (
        trace_id TEXT NOT NULL, event_id TEXT NOT NULL, digest TEXT NOT NULL,
        recorded_at TEXT NOT NULL, payload TEXT NOT NULL,
        PRIMARY KEY (trace_id, event_id, digest)) WITHOUT ROWID""",
    CLAIMS_INDEX,
    f"CREATE TABLE IF NOT EXISTS lots ({_LOT_DDL}, PRIMARY KEY (trace_id, lot_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS lots_by_lot ON lots (lot_id)",
    "CREATE INDEX IF NOT EXISTS lots_by_holder ON lots (holder)",
    "CREATE INDEX IF NOT EXISTS lots_by_license ON lots (license_id)",
    f"CREATE TABLE IF NOT EXISTS alert_steps ({_STEP_DDL}, PRIMARY KEY (alert_id, due_at)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS steps_by_trace ON alert_steps (trace_id)",
    "CREATE INDEX IF NOT EXISTS steps_by_party ON alert_steps (party, due_at)",
    "CREATE INDEX IF NOT EXISTS steps_by_due ON alert_steps (due_at)",
    "CREATE INDEX IF NOT EXISTS steps_by_severity ON alert_steps (severity, due_at)",
    """CREATE TABLE IF NOT EXISTS licenses (
        license_id TEXT NOT NULL, event_id TEXT NOT NULL, digest TEXT NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (license_id, event_id, digest)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_status (
        alert_id TEXT PRIMARY KEY, state TEXT NOT NULL, kind TEXT NOT NULL,
        quantity TEXT, transitions INTEGER NOT NULL, trace_id TEXT, party TEXT) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, transition_id TEXT NOT NULL UNIQUE,
        alert_id TEXT NOT NULL, transition TEXT NOT NULL, at TEXT NOT NULL,
        kind TEXT, severity TEXT, trace_id TEXT, lot_id TEXT, party TEXT,
        quantity TEXT, unit TEXT, message TEXT, due_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS journal_by_alert ON alert_journal (alert_id, seq)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        log_name TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
        key TEXT, value BLOB, error TEXT NOT NULL,
        PRIMARY KEY (log_name, partition, offset)) WITHOUT ROWID""",
    # The party registry (ledger/parties.py): roles space-separated.
    """CREATE TABLE IF NOT EXISTS parties (
        party_id TEXT PRIMARY KEY, country TEXT NOT NULL, roles TEXT NOT NULL, name TEXT) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters (key)",
]


class _ProjectionConnections(SQLiteConnectionPool):
    """The library's connections, with ``synchronous=NORMAL``.

    In WAL mode a NORMAL commit is still atomic, and survives the process
    being killed; only a power loss or an OS crash may take back the last
    commits, rows and tracking together, and the projector then projects
    those records again from the log, which keeps ``synchronous=FULL``
    (consumers/embedded_log.py).  Alert transitions re-derived that way keep
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


class SQLiteProjectionStore(SQLiteTrackingRecorder, ProjectionStore):
    def __init__(self, path: str | Path):
        self.path = str(path)
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
        return super().construct_create_table_statements() + _TABLES

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

    # -- writing ----------------------------------------------------------------

    def tracked_offsets(self, log_name: str) -> dict[int, int]:
        prefix = f"{log_name}#"
        with self.datastore.transaction(commit=False) as c:
            # Not LIKE: it ignores case in SQLite and treats '_' as a wildcard,
            # which would mix the offsets of logs named "Ledger" and "ledger".
            c.execute(
                "SELECT application_name, notification_id FROM tracking "
                "WHERE substr(application_name, 1, ?) = ?",
                (len(prefix), prefix),
            )
            return {int(name[len(prefix):]): offset for name, offset in c.fetchall()}

    def load_versions(self, trace_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(trace_ids):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT trace_id, payload, digest FROM reports WHERE trace_id IN ({marks})", chunk
                )
                for trace_id, payload, digest in c.fetchall():
                    out[trace_id].append((payload, digest))
        return out

    def event_claims(self, event_ids: list[str]) -> dict[str, list[tuple[str, str, datetime, str]]]:
        rows: list[Any] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(event_ids):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT event_id, trace_id, digest, recorded_at, json_extract(payload, '$.reporter') "
                    f"FROM reports WHERE event_id IN ({marks})", chunk
                )
                rows.extend(c.fetchall())
        return group_claims(rows)

    def commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        try:
            self._commit_batch(batch, trackings, clock)
        except OperationalError as error:
            if "full" not in str(error):
                raise  # "locked": the projector retries (consumers/projector.py)
            raise StoreUnavailable(
                f"projection store {self.path!r}: cannot commit: {error}; free some space and run the same "
                f"command again (every batch already committed is kept, and nothing is counted twice)"
            ) from error

    def _commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        with self.datastore.transaction(commit=True) as c:
            _take_write_lock(c)
            touched_alerts: set[str] = set()
            # Each trace's rows are replaced whole.  Set-based: the old rows of
            # every trace of the batch go first, then every new row, a few
            # statements per batch instead of six per trace (a trace appears
            # once per batch; should one appear twice, the later rows win).
            last = {rows.trace_id: rows for rows in batch.traces}
            for chunk in _chunks(sorted(last)):
                marks = ",".join("?" * len(chunk))
                c.execute(f"SELECT alert_id FROM alert_steps WHERE trace_id IN ({marks})", chunk)
                touched_alerts.update(r[0] for r in c.fetchall())
                c.execute(f"DELETE FROM lots WHERE trace_id IN ({marks})", chunk)
                c.execute(f"DELETE FROM alert_steps WHERE trace_id IN ({marks})", chunk)
            c.executemany(
                # A re-sent report recorded earlier than the stored copy
                # replaces it (ledger.trace.Outcome.EARLIER_COPY).
                "INSERT INTO reports VALUES (?, ?, ?, ?, ?) ON CONFLICT (trace_id, event_id, digest) "
                "DO UPDATE SET recorded_at = excluded.recorded_at, payload = excluded.payload "
                "WHERE excluded.recorded_at < reports.recorded_at",
                [(rows.trace_id, *v) for rows in batch.traces for v in rows.new_versions],
            )
            kept = list(last.values())
            c.executemany(f"INSERT INTO lots VALUES ({value_marks(LOT_COLUMNS, '?')})",
                          [lot for rows in kept for lot in rows.lots])
            c.executemany(f"INSERT INTO alert_steps VALUES ({value_marks(STEP_COLUMNS, '?')})",
                          [step for rows in kept for step in rows.steps])
            touched_alerts.update(step[0] for rows in batch.traces for step in rows.steps)
            c.executemany("INSERT OR IGNORE INTO licenses VALUES (?, ?, ?, ?)", batch.licenses)
            c.executemany(
                "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?)",
                [(d.log_name, d.partition, d.offset, d.key, d.value, d.error) for d in batch.dead_letters],
            )
            self._journal(c, touched_alerts, clock)
            c.execute("INSERT INTO store_meta VALUES ('writer_mark', ?) ON CONFLICT (key) "
                      "DO UPDATE SET value = excluded.value", (batch.writer_mark or fresh_mark(),))
            for tracking in trackings:
                # Raises IntegrityError, rolling back the whole batch, unless
                # this offset is beyond the one stored: no double counting.
                self._insert_tracking(c, tracking)
        self._committed()

    def _committed(self) -> None:
        """After a commit: the background checkpoint copies the log when it next can."""
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    def writer_mark(self) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT value FROM store_meta WHERE key = 'writer_mark'")
            row = c.fetchone()
            return row[0] if row else None

    def sweep(self, clock: datetime) -> int:
        with self.datastore.transaction(commit=True) as c:
            _take_write_lock(c)
            journaled = sweep_due(c, clock, self._journal, "?")
        self._committed()
        return journaled

    def refresh_statistics(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA optimize")  # analyzes what the queries so far would gain from

    def _journal(self, c: Any, alert_ids: set[str], clock: datetime) -> int:
        if not alert_ids:
            return 0
        now = ts(clock)
        ids = sorted(alert_ids)
        previous: dict[str, Status] = {}
        standing: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            c.execute(
                f"SELECT alert_id, state, kind, quantity, transitions FROM alert_status "
                f"WHERE alert_id IN ({marks})", chunk,
            )
            for row in c.fetchall():
                previous[row[0]] = Status(*row)
            c.execute(
                f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps s WHERE alert_id IN ({marks}) "
                f"AND due_at = (SELECT MAX(due_at) FROM alert_steps m "
                f"WHERE m.alert_id = s.alert_id AND m.due_at <= ?)",
                (*chunk, now),
            )
            for row in c.fetchall():
                step = dict(zip(STEP_COLUMNS, row))
                if step["quantity"] is None or step["quantity"] != "0":
                    standing[step["alert_id"]] = step
        last_known = self._last_journaled(c, [i for i in previous if i not in standing])
        changes = transitions(previous, standing, last_known)
        c.executemany(
            "INSERT OR IGNORE INTO alert_journal (transition_id, alert_id, transition, at, kind, "
            "severity, trace_id, lot_id, party, quantity, unit, message, due_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [journal_row(t, now) for t in changes],
        )
        c.executemany(
            "INSERT INTO alert_status VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO UPDATE "
            "SET state = excluded.state, kind = excluded.kind, quantity = excluded.quantity, "
            "transitions = excluded.transitions",
            [status_row(t) for t in changes],
        )
        return len(changes)

    def _last_journaled(self, c: Any, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(alert_ids):
            marks = ",".join("?" * len(chunk))
            c.execute(
                f"SELECT alert_id, kind, severity, trace_id, lot_id, party, quantity, unit, message, due_at "
                f"FROM alert_journal j WHERE alert_id IN ({marks}) AND seq = "
                f"(SELECT MAX(seq) FROM alert_journal k WHERE k.alert_id = j.alert_id)",
                chunk,
            )
            for row in c.fetchall():
                keys = ("alert_id", "kind", "severity", "trace_id", "lot_id", "party", "quantity",
                        "unit", "message", "due_at")
                out[row[0]] = dict(zip(keys, row))
        return out

    # -- queries ----------------------------------------------------------------

    def lots(self, *, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> list[dict[str, Any]]:
        where, params = filters("?", trace_id=trace_id, lot_id=lot_id, holder=holder)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT {', '.join(LOT_COLUMNS)} FROM lots {where} ORDER BY trace_id, lot_id", params)
            return [dict(zip(LOT_COLUMNS, row)) for row in c.fetchall()]

    def standing_alerts(self, as_of: datetime, *, party: str | None = None,
                        trace_id: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        where, params = filters("?", party=party, trace_id=trace_id, severity=severity, prefix="s.")
        where = (where + " AND" if where else "WHERE") + (
            " s.due_at = (SELECT MAX(due_at) FROM alert_steps m WHERE m.alert_id = s.alert_id AND m.due_at <= ?)"
            " AND (s.quantity IS NULL OR s.quantity != '0')"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {', '.join('s.' + col for col in STEP_COLUMNS)} FROM alert_steps s {where} "
                f"ORDER BY s.trace_id, s.lot_id, s.kind, s.alert_id",
                (*params, ts(as_of)),
            )
            return [step_dict(row) for row in c.fetchall()]

    def all_versions(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT trace_id, payload, digest FROM reports ORDER BY trace_id")
            for trace_id, payload, digest in c.fetchall():
                out.setdefault(trace_id, []).append((payload, digest))
        return out

    def licenses(self) -> list[tuple[str, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT payload, digest FROM licenses ORDER BY license_id, event_id, digest")
            return [(p, d) for p, d in c.fetchall()]

    def load_licenses(self, license_ids: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str, str, str]] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(sorted(set(license_ids))):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT license_id, event_id, digest, payload FROM licenses WHERE license_id IN ({marks})",
                    chunk,
                )
                out.extend(tuple(row) for row in c.fetchall())  # sqlite3.Row does not sort
        return [(payload, digest) for _l, _e, digest, payload in sorted(out)]

    def trace_lots(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        rows: list[Any] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(sorted(set(trace_ids))):
                marks = ",".join("?" * len(chunk))
                c.execute(f"SELECT {', '.join(LOT_COLUMNS)} FROM lots WHERE trace_id IN ({marks})", chunk)
                rows.extend(c.fetchall())
        rows.sort(key=lambda r: (r[0], r[1]))
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def license_lots(self, license_ids: list[str]) -> list[dict[str, Any]]:
        rows: list[Any] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(sorted(set(license_ids))):
                marks = ",".join("?" * len(chunk))
                c.execute(f"SELECT {', '.join(LOT_COLUMNS)} FROM lots WHERE license_id IN ({marks})", chunk)
                rows.extend(c.fetchall())
        rows.sort(key=lambda r: (r[0], r[1]))
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def trace_ids_for(self, *, lot_or_trace: str) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT DISTINCT trace_id FROM reports WHERE trace_id = ? "
                "UNION SELECT DISTINCT trace_id FROM lots WHERE lot_id = ? ORDER BY 1",
                (lot_or_trace, lot_or_trace),
            )
            return [r[0] for r in c.fetchall()]

    def alert_step_times(self, alert_ids: list[str]) -> dict[str, list[tuple[str, str | None]]]:
        out: dict[str, list[tuple[str, str | None]]] = {}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(sorted(set(alert_ids))):
                c.execute(f"SELECT alert_id, due_at, quantity FROM alert_steps WHERE alert_id IN "
                          f"({','.join('?' * len(chunk))}) ORDER BY alert_id, due_at", chunk)
                for alert_id, due_at, quantity in c.fetchall():
                    out.setdefault(alert_id, []).append((due_at, quantity))
        return out

    def journal(self, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT seq, transition_id, alert_id, transition, at, kind, severity, trace_id, lot_id, "
                "party, quantity, unit, message, due_at FROM alert_journal WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            keys = ("seq", "transition_id", "alert_id", "transition", "at", "kind", "severity",
                    "trace_id", "lot_id", "party", "quantity", "unit", "message", "due_at")
            return [dict(zip(keys, row)) for row in c.fetchall()]

    # -- the party registry (ledger.ports.PartyRegistry) ---------------------------

    def registered_parties(self) -> list[RegisteredParty]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT party_id, country, roles, name FROM parties ORDER BY party_id")
            return [party_from_row(row) for row in c.fetchall()]

    def register_parties(self, parties: Sequence[RegisteredParty]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO parties VALUES (?, ?, ?, ?) ON CONFLICT (party_id) DO UPDATE SET "
                "country = excluded.country, roles = excluded.roles, name = excluded.name",
                [party_row(p) for p in parties],
            )

    def remove_party(self, party_id: str) -> bool:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM parties WHERE party_id = ? RETURNING party_id", (party_id,))
            return bool(c.fetchall())

    def dead_letters(self) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT log_name, partition, offset, key, value, error FROM dead_letters "
                      "ORDER BY log_name, partition, offset")
            keys = ("log_name", "partition", "offset", "key", "value", "error")
            return [dict(zip(keys, row)) for row in c.fetchall()]

    def unread_records(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        rows: list[Any] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                c.execute(f"SELECT key, value, error FROM dead_letters WHERE key IN ({marks}) "
                          f"AND error NOT LIKE 'quarantined:%'", chunk)
                rows.extend(c.fetchall())
        return group_unread(rows)

    def fingerprint(self) -> dict[str, str]:
        queries = {
            "reports": "SELECT trace_id, event_id, digest, payload FROM reports ORDER BY 1, 2, 3",
            "lots": f"SELECT {', '.join(LOT_COLUMNS)} FROM lots ORDER BY trace_id, lot_id",
            "alert_steps": f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps ORDER BY alert_id, due_at",
            "licenses": "SELECT license_id, event_id, digest, payload FROM licenses ORDER BY 1, 2, 3",
        }
        out = {}
        with self.datastore.transaction(commit=False) as c:
            for name, sql in queries.items():
                c.execute(sql)
                digest = hashlib.sha256()
                for row in c.fetchall():
                    digest.update(json.dumps(list(row), default=str).encode())
                    digest.update(b"\n")
                out[name] = digest.hexdigest()
        return out

    def log_identity(self, log_name: str) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT value FROM store_meta WHERE key = ?", (LOG_IDENTITY_KEY + log_name,))
            row = c.fetchone()
            return row[0] if row else None

    def record_log_identity(self, log_name: str, identity: str) -> str:
        with self.datastore.transaction(commit=True) as c:
            c.execute("INSERT OR IGNORE INTO store_meta VALUES (?, ?)", (LOG_IDENTITY_KEY + log_name, identity))
            c.execute("SELECT value FROM store_meta WHERE key = ?", (LOG_IDENTITY_KEY + log_name,))
            return c.fetchone()[0]

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


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + IN_CLAUSE_MAX] for i in range(0, len(items), IN_CLAUSE_MAX)]
