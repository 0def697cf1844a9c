"""The SQLite store's write-ahead log is copied back into the database by a
thread beside the writer (projections/wal_checkpointer.py), not by the
commit that happens to take the log past its bound: that commit used to
stall a projector for 120-170 ms (BENCHMARKS.md, session 4)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from projections.rows import LOT_COLUMNS, ts
from projections.sqlite_store import WAL_CHECKPOINT_PAGES, SQLiteProjectionStore
from projections.store import ProjectedBatch, TraceRows

JULY = datetime(2019, 7, 1, tzinfo=timezone.utc)
WAIT_MAX_S = 10.0  # a bound on each wait for the thread; it takes milliseconds


def lots_of(trace_id: str, count: int) -> list[tuple]:
    rows = []
    for n in range(count):
        values = dict.fromkeys(LOT_COLUMNS)
        values.update(trace_id=trace_id, lot_id=f"LOT-{n:05d}", origin="exported", opened_by=f"e{n}",
                      item_id="HF-UHP", unit="kg", shipper="JP-FLUORO", holder="KR-SEMI",
                      shipped_at=ts(JULY), shipped="100", received="100", in_transit="0",
                      on_hand="100", since=ts(JULY), holder_country="KR", shipper_country="JP")
        rows.append(tuple(values[c] for c in LOT_COLUMNS))
    return rows


def a_batch(trace_id: str, lots: int = 300) -> ProjectedBatch:
    return ProjectedBatch([TraceRows(trace_id, [], lots_of(trace_id, lots), [])])


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_MAX_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_MAX_S} s: {what}"
        time.sleep(0.01)


def test_a_commit_is_copied_into_the_database_by_the_thread_not_by_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SQLiteProjectionStore(path)
    try:
        size_before = path.stat().st_size
        store.commit_batch(a_batch("TR-1"), [], JULY)
        # Far below the writer's own bound: without the thread, these pages
        # would stay in the log until 10,000 pages had been written.
        wait_until(lambda: store._checkpointer.checkpoints > 0, "a background checkpoint")
        assert 0 < store._checkpointer.log_frames < WAL_CHECKPOINT_PAGES
        wait_until(lambda: path.stat().st_size > size_before, "the database file holding the batch")
        assert store._checkpointer.failures == 0
    finally:
        store.close()


def test_a_sweep_that_journals_asks_for_a_copy_too(tmp_path: Path) -> None:
    store = SQLiteProjectionStore(tmp_path / "store.db")
    try:
        store.commit_batch(a_batch("TR-1"), [], JULY)
        wait_until(lambda: store._checkpointer.checkpoints > 0, "the checkpoint after the commit")
        done = store._checkpointer.checkpoints
        store.sweep(JULY)
        wait_until(lambda: store._checkpointer.checkpoints > done, "the checkpoint after the sweep")
    finally:
        store.close()


def test_the_log_starts_over_instead_of_growing(tmp_path: Path) -> None:
    # A checkpoint that finishes between two commits lets the next commit
    # write the log from its start again, so it holds one batch, not all.
    store = SQLiteProjectionStore(tmp_path / "store.db")
    try:
        after_each: list[int] = []
        for n in range(20):
            done = store._checkpointer.checkpoints
            store.commit_batch(a_batch(f"TR-{n}"), [], JULY)
            wait_until(lambda: store._checkpointer.checkpoints > done, "the checkpoint after a commit")
            after_each.append(store._checkpointer.log_frames)
        # Grown, the log would hold all twenty batches by the end.
        assert after_each[-1] <= 2 * after_each[0], after_each
    finally:
        store.close()


def test_closing_the_store_stops_the_thread(tmp_path: Path) -> None:
    store = SQLiteProjectionStore(tmp_path / "store.db")
    try:
        store.commit_batch(a_batch("TR-1"), [], JULY)
        thread = store._checkpointer._thread
        assert thread is not None and thread.is_alive()
    finally:
        store.close()
    assert not thread.is_alive()


def test_a_store_only_read_starts_no_thread(tmp_path: Path) -> None:
    SQLiteProjectionStore(tmp_path / "store.db").close()  # the schema
    store = SQLiteProjectionStore(tmp_path / "store.db")
    try:
        assert store.lots() == []
        assert store._checkpointer._thread is None
    finally:
        store.close()
