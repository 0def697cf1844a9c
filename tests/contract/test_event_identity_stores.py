"""Event identity through the real stores: SQLite and PostgreSQL alike.

``event_claims`` finds every stored version of an event id in any trace
(indexed by event id, an index existing stores gain when opened), and the
projection built on it gives both stores the same rows for one event id
reported in two traces, in either arrival order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from builders import exported, projected, received, stamp
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from fixtures_postgres import postgres_server_url
from ledger.policy import Policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectionStore

POLICY = Policy()
CLOCK = datetime(2021, 1, 1, tzinfo=timezone.utc)
SHARED = "RCV-SHARED-1"
EXPORT_A = stamp(exported(lot="LA", trace="TR-A", event_id="EXP-A"), "2019-07-10T12:00:00Z")
EXPORT_B = stamp(exported(lot="LB", trace="TR-B", event_id="EXP-B"), "2019-07-10T12:00:00Z")
RECEIPT_A = stamp(received(lot="LA", trace="TR-A", event_id=SHARED), "2019-07-15T12:00:00Z")
RECEIPT_B = stamp(received(lot="LB", trace="TR-B", event_id=SHARED), "2019-07-16T12:00:00Z")


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path: Path) -> Iterator[Callable[[str], ProjectionStore]]:
    """``open_store(name)``: the same name opens the same store again."""
    opened: list[ProjectionStore] = []

    def open_(name: str) -> ProjectionStore:
        if request.param == "sqlite":
            opened.append(SQLiteProjectionStore(tmp_path / f"{name}.db"))
        else:
            base = request.getfixturevalue("postgres_url")
            opened.append(PostgresProjectionStore.from_url(base))  # one name per test: the test's schema
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def _index_names(store: ProjectionStore) -> set[str]:
    if isinstance(store, SQLiteProjectionStore):
        with sqlite3.connect(store.path) as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='reports'")}
        db.close()
        return names
    schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(postgres_server_url().split("?", 1)[0], autocommit=True) as db:
        rows = db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'reports'",
                          (schema,)).fetchall()
    return {r[0] for r in rows}


def _drop_index(store: ProjectionStore) -> None:
    if isinstance(store, SQLiteProjectionStore):
        with sqlite3.connect(store.path) as db:
            db.execute("DROP INDEX reports_by_event")
        db.close()
        return
    schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(postgres_server_url().split("?", 1)[0], autocommit=True) as db:
        db.execute(psycopg.sql.SQL("DROP INDEX {}.reports_by_event").format(psycopg.sql.Identifier(schema)))


def test_event_claims_finds_every_version_of_an_event_id_in_any_trace(open_store):
    store = open_store("main")
    projected([EXPORT_A, EXPORT_B, RECEIPT_A, RECEIPT_B], store=store, policy=POLICY, now=CLOCK)

    claims = store.event_claims([SHARED, "EXP-A", "nobody-reported-this"])

    assert sorted(claims) == ["EXP-A", SHARED]
    assert [(t, r, by) for t, _d, r, by in claims[SHARED]] == [
        ("TR-A", RECEIPT_A.recorded_at, "KR-SEMI"), ("TR-B", RECEIPT_B.recorded_at, "KR-SEMI")]
    assert all(len(d) == 64 for _t, d, _r, _by in claims[SHARED])
    assert [(t, by) for t, _d, _r, by in claims["EXP-A"]] == [("TR-A", "JP-FLUORO")]
    assert store.event_claims([]) == {}


def test_a_store_without_the_event_index_gains_it_when_opened(open_store):
    store = open_store("main")
    assert "reports_by_event" in _index_names(store)
    _drop_index(store)
    assert "reports_by_event" not in _index_names(store)
    store.close()

    again = open_store("main")
    assert "reports_by_event" in _index_names(again)


@pytest.mark.parametrize("order", ["first recorded first", "first recorded last"])
def test_one_event_id_in_two_traces_through_the_store(open_store, tmp_path, order):
    reports = [EXPORT_A, RECEIPT_A, EXPORT_B, RECEIPT_B]
    if order == "first recorded last":
        reports = [EXPORT_B, RECEIPT_B, EXPORT_A, RECEIPT_A]
    log = EmbeddedLog(tmp_path / f"log-{order}.db")
    ingest_lines([r.model_dump_json(exclude_none=True) for r in reports], log, source="test",
                 clock=lambda: CLOCK, trust_recorded_at=True)
    store = open_store("main")
    catch_up(log, store, policy=POLICY, clock=lambda: CLOCK, batch_max=2)

    lots = {r["lot_id"]: (r["received"], r["in_transit"]) for r in store.lots()}
    assert lots == {"LA": ("100", "0"), "LB": ("0", "100")}
    conflicts = [a for a in store.standing_alerts(CLOCK) if a["kind"] == "conflicting_report"]
    assert [(a["trace_id"], a["lot_id"], a["party"], a["event_ids"]) for a in conflicts] == [
        ("TR-B", "LB", "KR-SEMI", [SHARED])]
    assert "'TR-A'" in conflicts[0]["message"]
