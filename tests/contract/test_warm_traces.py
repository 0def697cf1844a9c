"""A projector keeps the traces it folded between batches, and trusts them
only while the store is as its own last commit left it
(projections/warm_traces.py).  On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from builders import consumed, exported, log_records, received, stamp
from fixtures_postgres import admin_connection, postgres_schema_url
from ledger.policy import Policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectedBatch, ProjectionStore
from projections.trace_projection import project_batch
from projections.warm_traces import WarmTraces

CLOCK = datetime(2020, 6, 1, tzinfo=timezone.utc)
POLICY = Policy()
LOG = "ledger"

EXPORT = stamp(exported(qty="100"), "2019-07-10T12:00:00Z")
RECEIPT = stamp(received(qty="100"), "2019-07-15T12:00:00Z")
USE = stamp(consumed(qty="70"), "2019-08-20T12:00:00Z")


def apply(store: ProjectionStore, offset: int, report, warm: WarmTraces | None) -> None:
    project_batch(store, LOG, log_records([report], start=offset), policy=POLICY, now=CLOCK, warm=warm)


def account_of(store: ProjectionStore) -> list[tuple[str, str, str]]:
    return [(lot["lot_id"], lot["received"], lot["consumed"]) for lot in store.lots()]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request, tmp_path: Path) -> Iterator[Callable[[str], ProjectionStore]]:
    opened: list[ProjectionStore] = []
    schemas: list[str] = []

    def open_(name: str) -> ProjectionStore:
        if request.param == "sqlite":
            opened.append(SQLiteProjectionStore(tmp_path / f"{name}.db"))
        else:
            base = request.getfixturevalue("postgres_url").rsplit("schema=", 1)[1]
            schemas.append(f"{base}_{name}")
            opened.append(PostgresProjectionStore.from_url(postgres_schema_url(schemas[-1])))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()
    if schemas:
        with admin_connection() as admin:
            for name in schemas:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_every_commit_leaves_a_writer_mark_and_one_without_a_mark_leaves_a_fresh_one(open_store) -> None:
    store = open_store("main")
    store.commit_batch(ProjectedBatch(writer_mark="me:1"), [], CLOCK)
    assert store.writer_mark() == "me:1"
    store.commit_batch(ProjectedBatch(), [], CLOCK)
    unmarked = store.writer_mark()
    assert unmarked not in (None, "me:1")
    store.commit_batch(ProjectedBatch(), [], CLOCK)
    assert store.writer_mark() != unmarked


def test_a_projector_takes_its_own_traces_from_memory_while_no_one_else_writes(open_store) -> None:
    store, warm = open_store("main"), WarmTraces()
    for offset, report in enumerate([EXPORT, RECEIPT, USE]):
        apply(store, offset, report, warm)
    assert (warm.hits, warm.misses) == (2, 1)
    assert account_of(store) == [("L1", "100", "70")]


def test_kept_traces_are_dropped_once_another_projector_commits_to_the_store(open_store) -> None:
    store = open_store("main")
    mine, theirs = WarmTraces(), WarmTraces()
    apply(store, 0, EXPORT, mine)
    apply(store, 1, RECEIPT, theirs)  # another member of the group, same store
    apply(store, 2, USE, mine)  # must see the receipt it did not project itself
    assert mine.hits == 0
    assert account_of(store) == [("L1", "100", "70")]


def test_a_batch_that_fails_leaves_nothing_of_itself_in_memory(open_store) -> None:
    store, warm = open_store("main"), WarmTraces()
    apply(store, 5, EXPORT, warm)
    with pytest.raises(IntegrityError):  # offset 5 again: stale, refused whole
        apply(store, 5, RECEIPT, warm)
    apply(store, 6, USE, warm)
    # The refused receipt is in neither the store nor the kept trace.
    assert [(lot["received"], lot["consumed"]) for lot in store.lots()] == [("0", "70")]
    assert len(store.load_versions([EXPORT.trace_id])[EXPORT.trace_id]) == 2
