"""The PostgreSQL store's batch lock with several threads sharing one store
object (tests/integration/test_postgres_store.py has two store objects, as
two processes).  Re-entrant per thread, never shared between threads: a
second thread waits for the first as a second process would, and one
thread leaving never releases the lock under another."""

from __future__ import annotations

import threading
from contextlib import closing

import psycopg
import pytest

import projections.postgres_store as postgres_store
from fixtures_postgres import admin_connection
from projections.batch_lock import exclusive
from projections.postgres_store import PostgresProjectionStore
from projections.store import StoreUnavailable

pytestmark = pytest.mark.postgres

JOIN_S = 60  # bounds a hang; never reached when the lock works


def another_process_can_take(store: PostgresProjectionStore) -> bool:
    """pg_try_advisory_lock on the store's batch lock from a connection of
    its own (released again at once if taken)."""
    with closing(admin_connection()) as probe:
        took = probe.execute("SELECT pg_try_advisory_lock(%s)", (store._batch_lock,)).fetchone()[0]
        if took:
            probe.execute("SELECT pg_advisory_unlock(%s)", (store._batch_lock,))
        return took


def test_a_second_thread_waits_for_the_first_and_the_lock_outlives_the_first(postgres_url: str) -> None:
    store = PostgresProjectionStore.from_url(postgres_url)
    events: list[str] = []  # appended by the threads, in the order things happened
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    probes: list[bool] = []
    failures: list[BaseException] = []

    def first() -> None:
        try:
            with exclusive(store):
                events.append("A in")
                a_inside.set()
                # If B could enter beside us it would do so now; give it the
                # chance (a slow start only lets a regression slip, never
                # fails a working lock).
                if b_inside.wait(timeout=2):
                    events.append("A saw B inside")
                with exclusive(store):  # re-entrant within the thread
                    events.append("A re-entered")
                events.append("A out")
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)
        finally:
            a_left.set()

    def second() -> None:
        try:
            with exclusive(store):
                events.append("B in")
                b_inside.set()
                a_left.wait(timeout=JOIN_S)
                # A has left; we are still inside: the lock must still be ours.
                probes.append(another_process_can_take(store))
                events.append("B out")
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    a = threading.Thread(target=first, daemon=True)
    b = threading.Thread(target=second, daemon=True)
    try:
        a.start()
        assert a_inside.wait(timeout=JOIN_S)
        b.start()
        a.join(timeout=JOIN_S)
        b.join(timeout=JOIN_S)
        assert not a.is_alive() and not b.is_alive()
        assert failures == []
        assert events == ["A in", "A re-entered", "A out", "B in", "B out"]
        assert probes == [False]  # nobody else could take the lock while B was inside
        assert store._exclusive_depth == 0
        # Both left: the lock is free for another process ...
        assert another_process_can_take(store)
        # ... and the store takes it again for its next batch.
        with exclusive(store):
            assert not another_process_can_take(store)
        assert another_process_can_take(store)
    finally:
        store.close()


def test_a_second_thread_gives_up_after_the_lock_timeout_like_a_second_process(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresProjectionStore.from_url(postgres_url)
    monkeypatch.setattr(postgres_store, "LOCK_TIMEOUT_S", 0.2)
    outcome: list[BaseException | str] = []

    def second() -> None:
        try:
            with exclusive(store):
                outcome.append("entered")
        except StoreUnavailable as error:
            outcome.append(error)

    try:
        with exclusive(store):
            b = threading.Thread(target=second, daemon=True)
            b.start()
            b.join(timeout=JOIN_S)  # we stay inside until B is done
            assert not b.is_alive()
            assert not another_process_can_take(store)
        assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable), outcome
        assert "stayed locked" in str(outcome[0])
        # The failed wait changed nothing: this thread is out, the lock free.
        assert store._exclusive_depth == 0
        assert another_process_can_take(store)
    finally:
        store.close()
