"""Damage done to files on purpose, as a bad sector, a buggy copy or a
careless edit would, so tests can show it is noticed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["empty_sqlite_index"]


def empty_sqlite_index(db_path: Path, index: str) -> None:
    """Rewrite the root page of ``index`` (a small store's index is one
    page) as an empty leaf.  The table still holds every row; a lookup
    through the index finds none.  The file must not be open elsewhere."""
    db = sqlite3.connect(db_path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0]
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
    with db_path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        # B-tree page header: leaf index page (0x0a), no freeblock, 0 cells,
        # cell content starting at the end of the page, no fragments.
        f.write(bytes([0x0A, 0, 0, 0, 0]) + (page_size % 65536).to_bytes(2, "big") + bytes([0]))
