"""The PostgreSQL store's batch-lock fencing token.

The advisory lock is checked at the start of a batch's commit transaction;
between that check and COMMIT the lock's connection may drop and another
projector take the lock and read.  So each holder increments
``batch_epoch`` in store_meta on taking the lock, and a batch commits only
if the epoch, read FOR UPDATE in its commit transaction, is still the one
it took."""

from __future__ import annotations

import threading
from contextlib import closing
from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import Tracking
from psycopg import sql

from fixtures_postgres import admin_connection
from projections.postgres_store import PostgresProjectionStore, application_name
from projections.store import ProjectedBatch, StoreUnavailable, TraceRows

pytestmark = pytest.mark.postgres

NOW = datetime(2019, 7, 1, tzinfo=timezone.utc)


def schema_of(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def epoch(url: str) -> int | None:
    with closing(admin_connection()) as admin:
        row = admin.execute(
            sql.SQL("SELECT value FROM {}.store_meta WHERE key = 'batch_epoch'").format(
                sql.Identifier(schema_of(url)))
        ).fetchone()
    return None if row is None else int(row[0])


def batch(trace_id: str) -> ProjectedBatch:
    return ProjectedBatch([TraceRows(trace_id, [], [], [])])


def test_each_take_of_the_batch_lock_moves_the_epoch_on(postgres_url: str) -> None:
    store = PostgresProjectionStore.from_url(postgres_url)
    try:
        assert epoch(postgres_url) is None
        with store.exclusive():
            first = epoch(postgres_url)
            with store.exclusive():  # re-entry is the same holding
                assert epoch(postgres_url) == first
            store.commit_batch(batch("TR-1"), [Tracking("embedded#0", 1)], NOW)
        with store.exclusive():
            assert epoch(postgres_url) == first + 1
            store.commit_batch(batch("TR-2"), [Tracking("embedded#0", 2)], NOW)
        assert store.tracked_offsets("embedded") == {0: 2}
    finally:
        store.close()


def test_a_batch_is_not_committed_once_another_holder_took_the_lock_in_between(postgres_url: str) -> None:
    # Another projector taking the lock moves the epoch on; simulated here by
    # moving it from another connection while the store believes it holds
    # the lock.  The batch must roll back whole.
    store = PostgresProjectionStore.from_url(postgres_url)
    try:
        with store.exclusive():
            with closing(admin_connection()) as admin:
                admin.execute(
                    sql.SQL("UPDATE {}.store_meta SET value = (value::bigint + 1)::text "
                            "WHERE key = 'batch_epoch'").format(sql.Identifier(schema_of(postgres_url)))
                )
            with pytest.raises(StoreUnavailable, match="batch lock's connection was lost"):
                store.commit_batch(batch("TR-1"), [Tracking("embedded#0", 1)], NOW)
        assert store.tracked_offsets("embedded") == {}  # nothing of the batch was written
        assert store.load_versions(["TR-1"]) == {"TR-1": []}
        # The next batch takes the lock afresh (a new epoch) and commits.
        with store.exclusive():
            store.commit_batch(batch("TR-1"), [Tracking("embedded#0", 1)], NOW)
        assert store.tracked_offsets("embedded") == {0: 1}
    finally:
        store.close()


def test_the_next_holder_waits_for_a_commit_that_read_the_epoch(postgres_url: str) -> None:
    # The old holder's commit transaction holds the epoch row (FOR UPDATE)
    # until it commits; the next holder, though it got the advisory lock,
    # reads nothing until then: its increment of the epoch waits on the row.
    store = PostgresProjectionStore.from_url(postgres_url)
    with store.exclusive():
        pass  # the epoch row exists
    entered = threading.Event()

    def next_holder() -> None:
        with store.exclusive():
            entered.set()

    def waiting_on_the_row() -> int:
        with closing(admin_connection()) as admin:
            return admin.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.application_name = %s",
                (application_name(schema_of(postgres_url)),),
            ).fetchone()[0]

    committing = admin_connection()
    try:
        committing.execute("BEGIN")
        committing.execute(
            sql.SQL("SELECT value FROM {}.store_meta WHERE key = 'batch_epoch' FOR UPDATE").format(
                sql.Identifier(schema_of(postgres_url)))
        )
        waiter = threading.Thread(target=next_holder, daemon=True)
        waiter.start()
        for _ in range(1000):  # bounded: ~10 s
            if waiting_on_the_row():
                break
            threading.Event().wait(0.01)
        assert waiting_on_the_row() == 1
        assert not entered.is_set()
        committing.execute("COMMIT")
        waiter.join(timeout=30)
        assert entered.is_set()
    finally:
        committing.close()
        store.close()
