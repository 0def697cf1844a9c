"""The projection store in SQL, written once for SQLite and PostgreSQL.

``SQLProjectionStore`` holds the tables, every query and the batch logic;
a ``Dialect`` says how the two servers spell what differs (parameter marks,
id lists, "insert unless there", column types).  An adapter
(projections/sqlite_store.py, projections/postgres_store.py) adds only what
is its own: connections and transactions, locks, retries, the schema
version check and the integrity check.  So a replay into either store gives
the same rows and the same fingerprint (tests/contract/test_projection_store.py
runs one suite on both).

Stored spellings are the same on both: decimals TEXT in their canonical
spelling, times fixed-width UTC text (projections/rows.py), compared as
bytes (PostgreSQL's key columns use the "C" collation).
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar

from eventsourcing.persistence import Tracking

from ledger.parties import RegisteredParty
from projections.journal import Status, journal_row, status_row, transitions
from projections.rows import LOT_COLUMNS, STEP_COLUMNS, ts
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
from projections.store import ProjectedBatch, ProjectionStore, fresh_mark

__all__ = ["Dialect", "SQLProjectionStore", "tables", "lots_sql", "standing_alerts_sql", "LOG_IDENTITY_KEY"]

LOG_IDENTITY_KEY = "log_identity:"  # store_meta key prefix, then the log's name

JOURNAL_KEYS = ("seq", "transition_id", "alert_id", "transition", "at", "kind", "severity",
                "trace_id", "lot_id", "party", "quantity", "unit", "message", "due_at")
LAST_KEYS = ("alert_id", "kind", "severity", "trace_id", "lot_id", "party", "quantity",
             "unit", "message", "due_at")
DEAD_KEYS = ("log_name", "partition", "offset", "key", "value", "error")

# What fingerprint() digests: the same statements and the same row encoding
# on both stores, so equal read models give equal digests across them.
FINGERPRINTED = {
    "reports": "SELECT trace_id, event_id, digest, payload FROM reports ORDER BY 1, 2, 3",
    "lots": f"SELECT {', '.join(LOT_COLUMNS)} FROM lots ORDER BY trace_id, lot_id",
    "alert_steps": f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps ORDER BY alert_id, due_at",
    "licenses": "SELECT license_id, event_id, digest, payload FROM licenses ORDER BY 1, 2, 3",
}


def _make_row_json() -> Callable[[list[Any]], str]:
    """How fingerprint() writes a row: ``json.dumps(row, default=str)``, the
    same text to the byte, from json's C encoder made once (json.dumps makes
    an encoder per call and runs Python code around it, most of the cost of
    a fingerprint of 100,000 reports).  Rows are flat: no circular check.
    Without the C accelerator, json.dumps itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return lambda row: json.dumps(row, default=str)
    encode = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda row: "".join(encode(row, 0))


_FINGERPRINT_ROW = _make_row_json()


R = TypeVar("R")


class Dialect:
    """How one SQL server spells what the two stores do alike."""

    mark: str  # a parameter: "?" or "%s"
    percent: str  # a literal "%" inside a statement with parameters
    key_text: str  # a text column that is a key or compared: ordered by bytes
    without_rowid: str  # appended to a table keyed by its primary key
    serial_key: str  # alert_journal.seq: handed out in insert order
    big_int: str
    blob: str
    ids_max: int  # ids per statement: keeps statements bounded
    reporter: str  # a report row's reporter, read from its JSON payload
    statistics: str  # what refresh_statistics runs
    # Say "s.due_at <= as_of" outright in standing_alerts, though the
    # subquery implies it: PostgreSQL then uses the (party, due_at) and
    # (severity, due_at) indexes.
    due_bound_outright: bool
    ignore_prefix: str  # "insert unless the key is there": before the table...
    ignore_suffix: str  # ...and after the values

    def ids_in(self, column: str, ids: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """A condition "column is one of ``ids``" and its parameters."""
        raise NotImplementedError

    def starts_with(self, column: str, prefix: str) -> tuple[str, tuple[Any, ...]]:
        """A condition "column starts with ``prefix``", byte for byte."""
        raise NotImplementedError

    def insert_ignoring(self, into: str, values: str) -> str:
        """INSERT ``values`` INTO ``into`` unless a unique key is there already."""
        return f"{self.ignore_prefix} {into} VALUES ({values}){self.ignore_suffix}"

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)


def tables(d: Dialect) -> list[str]:
    """The read models' DDL; idempotent (IF NOT EXISTS)."""
    k, w = d.key_text, d.without_rowid
    lot_columns = ", ".join(f"{c} {k}" for c in LOT_COLUMNS)
    step_columns = ", ".join(f"{c} {k}" for c in STEP_COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS store_meta (key {k} PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS reports (
            trace_id {k} NOT NULL, event_id {k} NOT NULL, digest {k} NOT NULL,
            recorded_at {k} NOT NULL, payload TEXT NOT NULL,
            PRIMARY KEY (trace_id, event_id, digest)){w}""",
        CLAIMS_INDEX,
        f"CREATE TABLE IF NOT EXISTS lots ({lot_columns}, PRIMARY KEY (trace_id, lot_id)){w}",
        "CREATE INDEX IF NOT EXISTS lots_by_lot ON lots (lot_id)",
        "CREATE INDEX IF NOT EXISTS lots_by_holder ON lots (holder)",
        "CREATE INDEX IF NOT EXISTS lots_by_license ON lots (license_id)",
        f"CREATE TABLE IF NOT EXISTS alert_steps ({step_columns}, PRIMARY KEY (alert_id, due_at)){w}",
        "CREATE INDEX IF NOT EXISTS steps_by_trace ON alert_steps (trace_id)",
        "CREATE INDEX IF NOT EXISTS steps_by_party ON alert_steps (party, due_at)",
        "CREATE INDEX IF NOT EXISTS steps_by_due ON alert_steps (due_at)",
        "CREATE INDEX IF NOT EXISTS steps_by_severity ON alert_steps (severity, due_at)",
        f"""CREATE TABLE IF NOT EXISTS licenses (
            license_id {k} NOT NULL, event_id {k} NOT NULL, digest {k} NOT NULL,
            payload TEXT NOT NULL, PRIMARY KEY (license_id, event_id, digest)){w}""",
        f"""CREATE TABLE IF NOT EXISTS alert_status (
            alert_id {k} PRIMARY KEY, state {k} NOT NULL, kind {k} NOT NULL,
            quantity {k}, transitions INTEGER NOT NULL, trace_id {k}, party {k}){w}""",
        f"""CREATE TABLE IF NOT EXISTS alert_journal (
            seq {d.serial_key}, transition_id {k} NOT NULL UNIQUE,
            alert_id {k} NOT NULL, transition {k} NOT NULL, at {k} NOT NULL,
            kind {k}, severity {k}, trace_id {k}, lot_id {k}, party {k},
            quantity {k}, unit {k}, message TEXT, due_at {k})""",
        "CREATE INDEX IF NOT EXISTS journal_by_alert ON alert_journal (alert_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS dead_letters (
            log_name {k} NOT NULL, partition INTEGER NOT NULL, "offset" {d.big_int} NOT NULL,
            key TEXT, value {d.blob}, error TEXT NOT NULL,
            PRIMARY KEY (log_name, partition, "offset")){w}""",
        # The party registry (ledger/parties.py): roles space-separated.
        f"""CREATE TABLE IF NOT EXISTS parties (
            party_id {k} PRIMARY KEY, country {k} NOT NULL, roles {k} NOT NULL, name TEXT){w}""",
        "CREATE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters (key)",
    ]


# -- the hot queries, as statements (tests EXPLAIN PostgreSQL's) -----------------------


def lots_sql(d: Dialect, *, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> tuple[str, list[str]]:
    where, params = filters(d.mark, trace_id=trace_id, lot_id=lot_id, holder=holder)
    return f"SELECT {', '.join(LOT_COLUMNS)} FROM lots {where} ORDER BY trace_id, lot_id", params


def standing_alerts_sql(d: Dialect, as_of: datetime, *, party: str | None = None, trace_id: str | None = None,
                        severity: str | None = None) -> tuple[str, list[Any]]:
    where, params = filters(d.mark, party=party, trace_id=trace_id, severity=severity, prefix="s.")
    when = ts(as_of)
    bound = f" s.due_at <= {d.mark} AND" if d.due_bound_outright else ""
    where = (where + " AND" if where else "WHERE") + bound + (
        f" s.due_at = (SELECT MAX(due_at) FROM alert_steps m WHERE m.alert_id = s.alert_id AND m.due_at <= {d.mark})"
        " AND (s.quantity IS NULL OR s.quantity <> '0')"
    )
    query = (
        f"SELECT {', '.join('s.' + col for col in STEP_COLUMNS)} FROM alert_steps s {where} "
        f"ORDER BY s.trace_id, s.lot_id, s.kind, s.alert_id"
    )
    return query, [*params, when, when] if d.due_bound_outright else [*params, when]


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SQLProjectionStore(ProjectionStore):
    """Every query and write of the projection store, on a ``Dialect``.

    An adapter provides ``_transaction`` (one transaction, yielding a
    cursor whose rows are tuples or behave like them) and ``_retrying`` (run
    one whole transaction again after a lost connection, or just run it),
    and may take locks at the hooks ``_begin_batch``, ``_begin_sweep`` and
    ``_lock_journal``."""

    dialect: Dialect

    # -- what an adapter provides -------------------------------------------------

    @abstractmethod
    def _transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """One transaction: committed at the end if ``commit``, else rolled back."""

    @abstractmethod
    def _retrying(self, what: str, operation: Callable[[], R]) -> R:
        """Run ``operation`` (one whole transaction), retried as the adapter
        can; a failure names ``what`` was being done."""

    def _insert_tracking(self, c: Any, tracking: Tracking) -> None:
        """Record ``tracking`` in the transaction of ``c``: eventsourcing's
        tracking recorder, which each adapter also is, provides it."""
        raise NotImplementedError

    def _begin_batch(self, c: Any) -> None:
        """First thing in a batch's commit transaction."""

    def _begin_sweep(self, c: Any) -> None:
        """First thing in a sweep's transaction."""

    def _lock_journal(self, c: Any) -> None:
        """Before the journal reads alert statuses to write transitions."""

    def _committed(self) -> None:
        """After a batch or a sweep committed."""

    def _snapshot(self, c: Any) -> None:
        """First thing in fingerprint's transaction: one state read throughout."""

    def _each_row(self, c: Any) -> Iterable[Any]:
        """The rows of the last statement, for reading once: one Python row at
        a time, never the whole table's at once (fingerprint reads every
        report the store holds; memory must not grow with the history)."""
        return c

    # -- reading, one transaction a call -----------------------------------------

    def _read(self, what: str, query: str, params: Any = ()) -> list[Any]:
        def read() -> list[Any]:
            with self._transaction(commit=False) as c:
                c.execute(query, params)
                return c.fetchall()

        return self._retrying(what, read)

    def _read_by_ids(self, what: str, query: str, column: str, ids: list[str]) -> list[Any]:
        """``query`` (ending in WHERE) for ``column`` in ``ids``, a chunk of ids a statement."""

        def read() -> list[Any]:
            rows: list[Any] = []
            with self._transaction(commit=False) as c:
                for chunk in chunks(ids, self.dialect.ids_max):
                    condition, params = self.dialect.ids_in(column, chunk)
                    c.execute(f"{query} {condition}", params)
                    rows.extend(c.fetchall())
            return rows

        return self._retrying(what, read)

    # -- writing ----------------------------------------------------------------

    def tracked_offsets(self, log_name: str) -> dict[int, int]:
        prefix = f"{log_name}#"
        # Not LIKE: it ignores case in SQLite and treats '_' as a wildcard,
        # which would mix the offsets of logs named "Ledger" and "ledger".
        condition, params = self.dialect.starts_with("application_name", prefix)
        rows = self._read("read tracked offsets",
                          f"SELECT application_name, notification_id FROM tracking WHERE {condition}", params)
        return {int(name[len(prefix):]): offset for name, offset in rows}

    def load_versions(self, trace_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
        for trace_id, payload, digest in self._read_by_ids(
            "load report versions", "SELECT trace_id, payload, digest FROM reports WHERE", "trace_id", trace_ids
        ):
            out[trace_id].append((payload, digest))
        return out

    def event_claims(self, event_ids: list[str]) -> dict[str, list[tuple[str, str, datetime, str]]]:
        return group_claims(self._read_by_ids(
            "load event claims",
            f"SELECT event_id, trace_id, digest, recorded_at, {self.dialect.reporter} FROM reports WHERE",
            "event_id", event_ids,
        ))

    def commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        self._retrying("commit a batch", lambda: self._commit_batch(batch, trackings, clock))
        self._committed()

    def _commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        d = self.dialect
        with self._transaction(commit=True) as c:
            self._begin_batch(c)
            touched_alerts: set[str] = set()
            # Each trace's rows are replaced whole.  Set-based: the old rows of
            # every trace of the batch go first, then every new row, a few
            # statements per batch instead of six per trace (a trace appears
            # once per batch; should one appear twice, the later rows win).
            last = {rows.trace_id: rows for rows in batch.traces}
            for chunk in chunks(sorted(last), d.ids_max):
                condition, params = d.ids_in("trace_id", chunk)
                c.execute(f"SELECT alert_id FROM alert_steps WHERE {condition}", params)
                touched_alerts.update(r[0] for r in c.fetchall())
                c.execute(f"DELETE FROM lots WHERE {condition}", params)
                c.execute(f"DELETE FROM alert_steps WHERE {condition}", params)
            versions = [(rows.trace_id, *v) for rows in batch.traces for v in rows.new_versions]
            if versions:
                c.executemany(
                    # A re-sent report recorded earlier than the stored copy
                    # replaces it (ledger.trace.Outcome.EARLIER_COPY).
                    f"INSERT INTO reports VALUES ({d.marks(5)}) ON CONFLICT (trace_id, event_id, digest) "
                    f"DO UPDATE SET recorded_at = excluded.recorded_at, payload = excluded.payload "
                    f"WHERE excluded.recorded_at < reports.recorded_at",
                    versions,
                )
            lots = [lot for rows in last.values() for lot in rows.lots]
            if lots:
                c.executemany(f"INSERT INTO lots VALUES ({value_marks(LOT_COLUMNS, d.mark)})", lots)
            steps = [step for rows in last.values() for step in rows.steps]
            if steps:
                c.executemany(f"INSERT INTO alert_steps VALUES ({value_marks(STEP_COLUMNS, d.mark)})", steps)
            touched_alerts.update(step[0] for rows in batch.traces for step in rows.steps)
            if batch.licenses:
                c.executemany(d.insert_ignoring("licenses", d.marks(4)), batch.licenses)
            if batch.dead_letters:
                c.executemany(
                    d.insert_ignoring("dead_letters", d.marks(6)),
                    [(x.log_name, x.partition, x.offset, x.key, x.value, x.error) for x in batch.dead_letters],
                )
            self._journal(c, touched_alerts, clock)
            c.execute(f"INSERT INTO store_meta VALUES ('writer_mark', {d.mark}) ON CONFLICT (key) "
                      f"DO UPDATE SET value = excluded.value", (batch.writer_mark or fresh_mark(),))
            for tracking in trackings:
                # Raises IntegrityError, rolling back the whole batch, unless
                # this offset is beyond the one stored: no double counting.
                self._insert_tracking(c, tracking)

    def writer_mark(self) -> str | None:
        rows = self._read("read the writer mark", "SELECT value FROM store_meta WHERE key = 'writer_mark'")
        return rows[0][0] if rows else None

    def sweep(self, clock: datetime) -> int:
        def run() -> int:
            with self._transaction(commit=True) as c:
                self._begin_sweep(c)
                return sweep_due(c, clock, self._journal, self.dialect.mark)

        journaled = self._retrying("sweep due alerts", run)
        self._committed()
        return journaled

    def refresh_statistics(self) -> None:
        def run() -> None:
            with self._transaction(commit=True) as c:
                c.execute(self.dialect.statistics)

        self._retrying("refresh planner statistics", run)

    def _journal(self, c: Any, alert_ids: set[str], clock: datetime) -> int:
        if not alert_ids:
            return 0
        d = self.dialect
        self._lock_journal(c)
        now = ts(clock)
        previous: dict[str, Status] = {}
        standing: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sorted(alert_ids), d.ids_max):
            condition, params = d.ids_in("alert_id", chunk)
            c.execute(f"SELECT alert_id, state, kind, quantity, transitions FROM alert_status WHERE {condition}",
                      params)
            for row in c.fetchall():
                previous[row[0]] = Status(*row)
            c.execute(
                f"SELECT {', '.join(STEP_COLUMNS)} FROM alert_steps s WHERE {condition} "
                f"AND due_at = (SELECT MAX(due_at) FROM alert_steps m "
                f"WHERE m.alert_id = s.alert_id AND m.due_at <= {d.mark})",
                (*params, now),
            )
            for row in c.fetchall():
                step = dict(zip(STEP_COLUMNS, row))
                if step["quantity"] is None or step["quantity"] != "0":
                    standing[step["alert_id"]] = step
        last_known = self._last_journaled(c, [i for i in previous if i not in standing])
        changes = transitions(previous, standing, last_known)
        if changes:
            c.executemany(
                d.insert_ignoring("alert_journal (transition_id, alert_id, transition, at, kind, severity, "
                                  "trace_id, lot_id, party, quantity, unit, message, due_at)", d.marks(13)),
                [journal_row(t, now) for t in changes],
            )
            c.executemany(
                f"INSERT INTO alert_status VALUES ({d.marks(7)}) ON CONFLICT (alert_id) DO UPDATE "
                f"SET state = excluded.state, kind = excluded.kind, quantity = excluded.quantity, "
                f"transitions = excluded.transitions",
                [status_row(t) for t in changes],
            )
        return len(changes)

    def _last_journaled(self, c: Any, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in chunks(alert_ids, self.dialect.ids_max):
            condition, params = self.dialect.ids_in("alert_id", chunk)
            c.execute(
                f"SELECT {', '.join(LAST_KEYS)} FROM alert_journal j WHERE {condition} AND seq = "
                f"(SELECT MAX(seq) FROM alert_journal k WHERE k.alert_id = j.alert_id)",
                params,
            )
            for row in c.fetchall():
                out[row[0]] = dict(zip(LAST_KEYS, row))
        return out

    # -- queries ----------------------------------------------------------------

    def lots(self, *, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> list[dict[str, Any]]:
        query, params = lots_sql(self.dialect, trace_id=trace_id, lot_id=lot_id, holder=holder)
        return [dict(zip(LOT_COLUMNS, row)) for row in self._read("read lots", query, params)]

    def standing_alerts(self, as_of: datetime, *, party: str | None = None,
                        trace_id: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        query, params = standing_alerts_sql(self.dialect, as_of, party=party, trace_id=trace_id, severity=severity)
        return [step_dict(row) for row in self._read("read standing alerts", query, params)]

    def all_versions(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for trace_id, payload, digest in self._read(
            "read report versions", "SELECT trace_id, payload, digest FROM reports ORDER BY trace_id"
        ):
            out.setdefault(trace_id, []).append((payload, digest))
        return out

    def licenses(self) -> list[tuple[str, str]]:
        rows = self._read("read licenses", "SELECT payload, digest FROM licenses ORDER BY license_id, event_id, digest")
        return [(p, d) for p, d in rows]

    def load_licenses(self, license_ids: list[str]) -> list[tuple[str, str]]:
        rows = self._read_by_ids("read licenses", "SELECT license_id, event_id, digest, payload FROM licenses WHERE",
                                 "license_id", sorted(set(license_ids)))
        # tuple(): sqlite3.Row does not sort
        return [(payload, digest) for _l, _e, digest, payload in sorted(tuple(row) for row in rows)]

    def traces_sharing_event_ids(self) -> list[str]:
        """Every trace holding an event id another trace holds too (ledger/identity.py)."""
        rows = self._read(
            "find event ids held by two traces",
            "SELECT DISTINCT trace_id FROM reports WHERE event_id IN "
            "(SELECT event_id FROM reports GROUP BY event_id HAVING COUNT(DISTINCT trace_id) > 1) ORDER BY trace_id")
        return [row[0] for row in rows]

    def license_ids(self) -> list[str]:
        """Every license a report is about or a lot cites."""
        rows = self._read(
            "list the licenses", "SELECT license_id FROM licenses UNION "
            "SELECT license_id FROM lots WHERE license_id IS NOT NULL AND license_id != '' ORDER BY 1")
        return [row[0] for row in rows]

    def trace_lots(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        return self._lots_by("read the lots of traces", "trace_id", trace_ids)

    def license_lots(self, license_ids: list[str]) -> list[dict[str, Any]]:
        return self._lots_by("read license lots", "license_id", license_ids)

    def _lots_by(self, what: str, column: str, ids: list[str]) -> list[dict[str, Any]]:
        rows = self._read_by_ids(what, f"SELECT {', '.join(LOT_COLUMNS)} FROM lots WHERE", column, sorted(set(ids)))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [dict(zip(LOT_COLUMNS, row)) for row in rows]

    def trace_ids_for(self, *, lot_or_trace: str) -> list[str]:
        m = self.dialect.mark
        rows = self._read(
            "find traces",
            f"SELECT DISTINCT trace_id FROM reports WHERE trace_id = {m} "
            f"UNION SELECT DISTINCT trace_id FROM lots WHERE lot_id = {m} ORDER BY 1",
            (lot_or_trace, lot_or_trace),
        )
        return [r[0] for r in rows]

    def alert_step_times(self, alert_ids: list[str]) -> dict[str, list[tuple[str, str | None]]]:
        rows = self._read_by_ids("read alert steps", "SELECT alert_id, due_at, quantity FROM alert_steps WHERE",
                                 "alert_id", sorted(set(alert_ids)))
        out: dict[str, list[tuple[str, str | None]]] = {}
        for alert_id, due_at, quantity in sorted(tuple(row) for row in rows):  # tuple(): sqlite3.Row does not sort
            out.setdefault(alert_id, []).append((due_at, quantity))
        return out

    def journal(self, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        m = self.dialect.mark
        rows = self._read(
            "read the alert journal",
            f"SELECT {', '.join(JOURNAL_KEYS)} FROM alert_journal WHERE seq > {m} ORDER BY seq LIMIT {m}",
            (after_seq, limit),
        )
        return [dict(zip(JOURNAL_KEYS, row)) for row in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self._read(
            "read dead letters",
            'SELECT log_name, partition, "offset", key, value, error FROM dead_letters '
            'ORDER BY log_name, partition, "offset"',
        )
        return [dict(zip(DEAD_KEYS, row)) for row in rows]

    def unread_records(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        return group_unread(self._read_by_ids(
            "load dead letters",
            f"SELECT key, value, error FROM dead_letters WHERE error NOT LIKE 'quarantined:{self.dialect.percent}' AND",
            "key", keys,
        ))

    def fingerprint(self) -> dict[str, str]:
        def read() -> dict[str, str]:
            out = {}
            with self._transaction(commit=False) as c:
                self._snapshot(c)
                for name, query in FINGERPRINTED.items():
                    c.execute(query)
                    digest = hashlib.sha256()
                    for row in self._each_row(c):
                        digest.update(_FINGERPRINT_ROW(list(row)).encode())
                        digest.update(b"\n")
                    out[name] = digest.hexdigest()
            return out

        return self._retrying("fingerprint the read models", read)

    def log_identity(self, log_name: str) -> str | None:
        rows = self._read("read the log identity", f"SELECT value FROM store_meta WHERE key = {self.dialect.mark}",
                          (LOG_IDENTITY_KEY + log_name,))
        return rows[0][0] if rows else None

    def record_log_identity(self, log_name: str, identity: str) -> str:
        d = self.dialect

        def write() -> str:
            with self._transaction(commit=True) as c:
                c.execute(d.insert_ignoring("store_meta", d.marks(2)), (LOG_IDENTITY_KEY + log_name, identity))
                c.execute(f"SELECT value FROM store_meta WHERE key = {d.mark}", (LOG_IDENTITY_KEY + log_name,))
                return str(c.fetchone()[0])

        return self._retrying("record the log identity", write)

    # -- the party registry (ledger.ports.PartyRegistry) ---------------------------

    def registered_parties(self) -> list[RegisteredParty]:
        rows = self._read("read the party registry", "SELECT party_id, country, roles, name FROM parties ORDER BY party_id")
        return [party_from_row(row) for row in rows]

    def register_parties(self, parties: Sequence[RegisteredParty]) -> None:
        def write() -> None:
            with self._transaction(commit=True) as c:
                c.executemany(
                    f"INSERT INTO parties VALUES ({self.dialect.marks(4)}) ON CONFLICT (party_id) DO UPDATE SET "
                    f"country = excluded.country, roles = excluded.roles, name = excluded.name",
                    [party_row(p) for p in parties],
                )

        self._retrying("register parties", write)

    def remove_party(self, party_id: str) -> bool:
        def write() -> bool:
            with self._transaction(commit=True) as c:
                c.execute(f"DELETE FROM parties WHERE party_id = {self.dialect.mark} RETURNING party_id", (party_id,))
                return bool(c.fetchall())

        return self._retrying("remove a party", write)
