"""projections.batch_lock.path_lock is keyed on the file, not on how its
path is spelled: one thread nesting batches over two store objects on the
same SQLite file re-enters instead of waiting on itself."""

from __future__ import annotations

import os
import threading

import pytest

import projections.batch_lock as batch_lock
from projections.batch_lock import exclusive, path_lock
from projections.sqlite_store import SQLiteProjectionStore


@pytest.fixture(autouse=True)
def short_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # A regression then fails in half a second instead of hanging 20 s.
    monkeypatch.setattr(batch_lock, "LOCK_TIMEOUT_S", 0.5)


def test_nested_batches_over_one_file_spelled_two_ways_reenter(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store_a = SQLiteProjectionStore(str(tmp_path / "store.db"))
    store_b = SQLiteProjectionStore("store.db")
    entered = []
    with exclusive(store_a):
        with exclusive(store_b):
            entered.append("inner")
        entered.append("outer")
    assert entered == ["inner", "outer"]


def test_a_symlink_to_the_store_is_the_same_lock(tmp_path) -> None:
    # Another process (here: thread) opening the store by its link waits
    # for the holder: one lock file for the one store file.
    real = tmp_path / "store.db"
    real.touch()
    link = tmp_path / "link.db"
    os.symlink(real, link)
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            with path_lock(str(link)):
                outcome.append("entered")
        except batch_lock.StoreUnavailable:
            outcome.append("waited, then gave up")

    with path_lock(str(real)):
        t = threading.Thread(target=other_thread, daemon=True)
        t.start()
        t.join(timeout=30)
    assert outcome == ["waited, then gave up"]


def test_another_thread_still_waits_for_the_file_under_any_spelling(tmp_path, monkeypatch) -> None:
    # Re-entry is per thread: the fix must not let another thread in.
    monkeypatch.chdir(tmp_path)
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            with path_lock("store.db"):
                outcome.append("entered")
        except batch_lock.StoreUnavailable:
            outcome.append("waited, then gave up")

    with path_lock(str(tmp_path / "store.db")):
        t = threading.Thread(target=other_thread, daemon=True)
        t.start()
        t.join(timeout=30)
    assert outcome == ["waited, then gave up"]
