"""What only the PostgreSQL store has to answer for: a server that is not
there, connections that die mid-run, and query plans on a filled store.

The shared behaviour of both stores is in tests/contract/test_projection_store.py.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import Tracking

from fixtures_postgres import admin_connection
from projections.postgres_store import (
    PostgresProjectionStore,
    application_name,
    lots_sql,
    standing_alerts_sql,
)
from projections.rows import LOT_COLUMNS, ts
from projections.store import ProjectedBatch, StoreUnavailable, TraceRows

pytestmark = pytest.mark.postgres

UTC = timezone.utc
JULY = datetime(2019, 7, 1, tzinfo=UTC)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_at_start_is_one_clear_line_naming_where() -> None:
    port = closed_port()
    with pytest.raises(StoreUnavailable) as refused:
        PostgresProjectionStore.from_url(f"postgresql://postgres@127.0.0.1:{port}/test?schema=ledger")
    message = str(refused.value)
    assert message.startswith(f"projection store postgresql://127.0.0.1:{port}/test?schema=ledger: cannot connect:")
    assert "\n" not in message


def test_a_url_without_a_database_is_refused_naming_the_url() -> None:
    # StoreUnavailable, like an unreachable server: the CLI shows one line.
    with pytest.raises(StoreUnavailable, match="names no database"):
        PostgresProjectionStore.from_url("postgresql://postgres@127.0.0.1:5432/")
    with pytest.raises(StoreUnavailable, match="unknown parameter 'schemas'"):
        PostgresProjectionStore.from_url("postgresql://postgres@127.0.0.1:5432/test?schemas=x")
    with pytest.raises(StoreUnavailable, match="port is not a number"):
        PostgresProjectionStore.from_url("postgresql://postgres@127.0.0.1:port/test")
    with pytest.raises(StoreUnavailable, match="schema: 'a-b'"):
        PostgresProjectionStore.from_url("postgresql://postgres@127.0.0.1:5432/test?schema=a-b")


def test_connections_killed_mid_run_are_replaced_without_losing_a_batch(postgres_url: str) -> None:
    store = PostgresProjectionStore.from_url(postgres_url, retry_wait_s=0.05)
    schema = postgres_url.rsplit("schema=", 1)[1]
    try:
        store.commit_batch(ProjectedBatch(), [Tracking("log#0", 1)], JULY)
        # The database administrator (or a failover) ends every connection.
        with admin_connection() as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (application_name(schema),),
            ).fetchall()
        assert killed and all(ok for (ok,) in killed)
        # The next batch goes through on a new connection, and so do reads.
        store.commit_batch(ProjectedBatch(), [Tracking("log#0", 2)], JULY)
        assert store.tracked_offsets("log") == {0: 2}
    finally:
        store.close()


class Proxy:
    """A TCP relay to PostgreSQL that the test can pull the plug on."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_a_server_gone_for_good_fails_loudly_after_the_bounded_retries(postgres_url: str) -> None:
    schema = postgres_url.rsplit("schema=", 1)[1]
    with admin_connection() as admin:
        target, dbname, user = (admin.info.host, admin.info.port), admin.info.dbname, admin.info.user
    proxy = Proxy(target)
    store = PostgresProjectionStore(dbname=dbname, host="127.0.0.1", port=proxy.port, user=user,
                                    schema=schema, connect_timeout_s=1, attempts_max=3, retry_wait_s=0.05)
    try:
        store.commit_batch(ProjectedBatch(), [Tracking("log#0", 1)], JULY)
        proxy.stop()  # the network to the database is gone and stays gone
        with pytest.raises(StoreUnavailable) as gone:
            store.tracked_offsets("log")
        assert str(gone.value).startswith(
            f"projection store postgresql://127.0.0.1:{proxy.port}/{dbname}?schema={schema}: "
            f"could not read tracked offsets in 3 attempts; last error:"
        )
    finally:
        proxy.stop()
        store.close()


# -- query plans on a filled store -------------------------------------------------

TRACES = 1000
LOTS_PER_TRACE = 3
PARTIES = 200


def _lot(trace: int, n: int) -> tuple:
    values = dict.fromkeys(LOT_COLUMNS)
    values.update(trace_id=f"TR-{trace:05d}", lot_id=f"LOT-{trace:05d}-{n}", holder=f"P-{(trace + n) % PARTIES:03d}",
                  license_id=f"LIC-{trace % 50:02d}", unit="kg", shipped="100", on_hand="30", since=ts(JULY))
    return tuple(values[c] for c in LOT_COLUMNS)


def _steps(trace: int, n: int) -> list[tuple]:
    # Per lot: transit overdue (medium), then unaccounted (high) in two
    # steps; one lot in fifty also carries a rare low-severity finding.
    lot_id, party = f"LOT-{trace:05d}-{n}", f"P-{(trace + n) % PARTIES:03d}"
    out = []
    for kind, severity, days, quantity in (("transit_overdue", "medium", 30, "100"),
                                           ("unaccounted", "high", 90, "30"), ("unaccounted", "high", 180, "20")):
        out.append((f"{kind}-{lot_id}", ts(JULY + timedelta(days=days + trace % 7)), kind, severity,
                    f"TR-{trace:05d}", lot_id, party, quantity, "kg", "message", json.dumps(["e"])))
    if (trace * LOTS_PER_TRACE + n) % 50 == 0:
        out.append((f"invalid-{lot_id}", ts(JULY), "invalid_report", "low", f"TR-{trace:05d}", lot_id, party,
                    None, None, "message", json.dumps(["e"])))
    return out


def test_hot_queries_use_indexes_on_a_filled_store(postgres_url: str) -> None:
    store = PostgresProjectionStore.from_url(postgres_url)
    schema = postgres_url.rsplit("schema=", 1)[1]
    try:
        for first in range(0, TRACES, 250):
            traces = [
                TraceRows(f"TR-{t:05d}", [], [_lot(t, n) for n in range(LOTS_PER_TRACE)],
                          [s for n in range(LOTS_PER_TRACE) for s in _steps(t, n)])
                for t in range(first, first + 250)
            ]
            store.commit_batch(ProjectedBatch(traces), [Tracking("log#0", first)], JULY)
        now = JULY + timedelta(days=400)
        hot = {
            "whereabouts of a trace": lots_sql(trace_id="TR-00421"),
            "whereabouts of a lot": lots_sql(lot_id="LOT-00421-2"),
            "holdings of a party": lots_sql(holder="P-042"),
            "standing alerts of a party": standing_alerts_sql(now, party="P-042"),
            "standing alerts of a trace": standing_alerts_sql(now, trace_id="TR-00421"),
            # A rare severity and the one most steps have.  (On a far larger
            # store, a filter that keeps most rows may rightly be served by a
            # sequential scan; on this one the index is cheaper for both.)
            "standing alerts of a rare severity": standing_alerts_sql(now, severity="low"),
            "standing alerts of a common severity": standing_alerts_sql(now, severity="high"),
        }
        with admin_connection() as admin:
            admin.execute(f'SET search_path TO "{schema}"')
            admin.execute("ANALYZE lots")
            admin.execute("ANALYZE alert_steps")
            counts = admin.execute("SELECT (SELECT count(*) FROM lots), (SELECT count(*) FROM alert_steps)").fetchone()
            assert counts[0] == TRACES * LOTS_PER_TRACE and counts[1] > 9000
            plans = {}
            for name, (query, params) in hot.items():
                rows = admin.execute("EXPLAIN " + query, params).fetchall()
                plans[name] = "\n".join(r[0] for r in rows)
                # The query answers something: the plan is for real data.
                assert admin.execute(query, params).fetchall(), name
        scans = {name: plan for name, plan in plans.items()
                 if "Seq Scan on lots" in plan or "Seq Scan on alert_steps" in plan}
        assert scans == {}
    finally:
        store.close()


def test_the_batch_lock_lets_one_projector_at_a_time_compute_and_commit(postgres_url: str) -> None:
    # Two projector processes on one store (two store objects here): while
    # the first holds the batch lock, the second waits for it -- seen in
    # pg_locks, not guessed from timing -- and gets it once it is released.
    first = PostgresProjectionStore.from_url(postgres_url)
    second = PostgresProjectionStore.from_url(postgres_url)
    entered = threading.Event()

    def second_projector() -> None:
        with second.exclusive():
            entered.set()

    def waiting_for_advisory_locks() -> int:
        with admin_connection() as admin:
            return admin.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = %s",
                (application_name(postgres_url.rsplit("schema=", 1)[1]),),
            ).fetchone()[0]

    try:
        with first.exclusive():
            with first.exclusive():  # re-entrant: publishing inside a batch
                pass
            waiter = threading.Thread(target=second_projector, daemon=True)
            waiter.start()
            for _ in range(1000):  # bounded: ~10 s
                if waiting_for_advisory_locks():
                    break
                threading.Event().wait(0.01)
            assert waiting_for_advisory_locks() == 1
            assert not entered.is_set()
        waiter.join(timeout=30)
        assert entered.is_set()
    finally:
        first.close()
        second.close()


def test_a_batch_is_not_committed_once_the_batch_lock_is_lost(postgres_url: str) -> None:
    # The lock lives on a connection of its own.  If the server drops that
    # connection, another member may already be computing the same traces:
    # the batch must roll back, not commit on a lock it no longer holds.
    store = PostgresProjectionStore.from_url(postgres_url)
    rows = TraceRows("TR-1", [], [], [])
    try:
        with store.exclusive():
            with admin_connection() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (store._lock_conn.info.backend_pid,))
            with pytest.raises(StoreUnavailable, match="batch lock's connection was lost"):
                store.commit_batch(ProjectedBatch([rows]), [Tracking("embedded#0", 1)], datetime.now(timezone.utc))
        assert store.tracked_offsets("embedded") == {}  # nothing of the batch was written
    finally:
        store.close()
