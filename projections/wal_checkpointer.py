"""Copying the SQLite store's write-ahead log back into the database, beside
the writer instead of inside its commits.

In WAL mode SQLite's default is that the commit which takes the log past
``wal_autocheckpoint`` pages copies the whole log into the database and
syncs it, before the committing call returns.  For a projector that commits
a batch every few tens of milliseconds, that one commit in ten took
120-170 ms instead of 6 ms (BENCHMARKS.md, session 4): a stall that every
report then waiting for the projector, and so every alert, inherits.

A ``WalCheckpointer`` runs PASSIVE checkpoints from a thread with its own
connection.  PASSIVE never waits for a lock and never blocks the writer or
a reader; it copies what it can and leaves the rest for next time.  SQLite
does its I/O without Python's interpreter lock, so the writer goes on with
its next batch meanwhile.  The writer's own automatic checkpoint stays, at a
higher bound (``WAL_CHECKPOINT_PAGES``), as the backstop: when the thread
falls behind, the commits take the work over exactly as before.

Nothing about durability changes: a checkpoint copies committed pages only,
and a crash at any point of one leaves the log and the database consistent
(SQLite's own guarantee); the next checkpoint finishes the copy.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["WalCheckpointer", "CHECKPOINT_EVERY_S", "CHECKPOINT_BUSY_TIMEOUT_MS"]

# At most one background checkpoint in this period, and only after a commit
# asked for one: each copies what the commits of the period wrote.
CHECKPOINT_EVERY_S = 0.0
# A PASSIVE checkpoint does not wait for the writer; this bounds the wait for
# the checkpoint lock (another process's checkpoint) and for opening the file.
CHECKPOINT_BUSY_TIMEOUT_MS = 1_000


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite database file, asked by ``nudge``."""

    def __init__(self, path: str, *, every_s: float = CHECKPOINT_EVERY_S):
        self.path = path
        self.every_s = every_s
        self.checkpoints = 0  # completed calls, for tests and benchmarks
        self.frames_copied = 0
        self.failures = 0
        self._asked = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None  # started by the first nudge: a store only read needs none
        self._starting = threading.Lock()

    def nudge(self) -> None:
        """Called after a commit: there is log to copy."""
        if self._thread is None:
            with self._starting:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint:{self.path}",
                                                    daemon=True)
                    self._thread.start()
        self._asked.set()

    def close(self) -> None:
        """Stop the thread; the checkpoint it is running, if any, finishes first."""
        with self._starting:
            self._stopping.set()
        self._asked.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, timeout=CHECKPOINT_BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                             isolation_level=None)
        try:
            while True:
                self._asked.wait()
                if self._stopping.is_set():
                    return
                self._asked.clear()
                self._checkpoint(db)
                # Copy at most once a period: a page rewritten by several
                # batches of the period is copied once, not once per batch.
                if self.every_s > 0 and self._stopping.wait(self.every_s):
                    return
                # Start the next copy right after a commit, never in the
                # middle of the writer's work: one that finishes before the
                # next commit lets that commit write the log from its start
                # again, so the log stays the size of a few batches.
                self._asked.clear()
                if self._stopping.is_set():  # close() sets it before asking: no wait is missed
                    return
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        try:
            _busy, _log_frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            # The writer's automatic checkpoint is the backstop: a failed
            # background copy only means the next commit past the bound does it.
            self.failures += 1
            return
        self.checkpoints += 1
        self.frames_copied += max(copied, 0)
