"""One SQLite file of our own, opened the same way wherever we keep one:
the embedded event log and the credentials store.  (The projection store's
connections are eventsourcing's pool: projections/sqlite_store.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["open_wal_file"]


def open_wal_file(path: Path, *, busy_timeout_s: float, synchronous: str | None = None) -> sqlite3.Connection:
    """Open (creating it and its directory if need be) the database at ``path``
    in WAL mode: readers never wait for the writer.

    Autocommit (``isolation_level=None``): transactions are the caller's own
    BEGIN ... COMMIT.  A writer waits up to ``busy_timeout_s`` for another's
    lock.  ``synchronous`` (e.g. "FULL"): SQLite's default when None.
    Raises sqlite3.Error, or OSError when the directory cannot be made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db
