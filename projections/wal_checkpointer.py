"""Copying the SQLite store's write-ahead log back into the database, beside
the writer instead of inside its commits.

In WAL mode SQLite's default is that the commit which takes the log past
``wal_autocheckpoint`` pages copies the whole log into the database and
syncs it, before the committing call returns.  For a projector that commits
a batch every few tens of milliseconds, that one commit in ten took many
times as long as the others (BENCHMARKS.md, session 4): a stall that every
report then waiting for the projector, and so every alert, inherits.

A ``WalCheckpointer`` runs PASSIVE checkpoints from a thread with its own
connection.  PASSIVE never waits for a lock and never blocks the writer or
a reader; it copies what it can and leaves the rest for next time.  SQLite
does its I/O without Python's interpreter lock, so the writer goes on with
its next batch meanwhile.  The writer's own automatic checkpoint stays, at a
higher bound (``WAL_CHECKPOINT_PAGES``), as the backstop: when the thread
falls behind, a commit past that bound copies the log itself, as before
(and skips it while the thread's copy holds SQLite's checkpoint lock).

A copy that finishes before the writer's next commit lets that commit write
the log from its start again, so the log stays a few batches long.  It
cannot start over while a reader holds a snapshot from before the copy; a
query process that reads without pause keeps it growing until such a gap.

The copies sync the database file, off the commit path: more syncs than
the writer's own checkpoints made (each copy syncs once), which on a disk
with slow flushes compete with the embedded log's synchronous commits.
``every_s`` spaces them out.  A forked child inherits no running thread:
its writer's own checkpoint does the work.

Nothing about durability changes: a checkpoint copies committed pages only,
and a crash at any point of one leaves the log and the database consistent
(SQLite's own guarantee); the next checkpoint finishes the copy.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from urllib.parse import quote

__all__ = ["WalCheckpointer", "CHECKPOINT_EVERY_S", "CHECKPOINT_OPEN_TIMEOUT_S"]

# At least this long between two copies; 0: a copy right after each commit
# (BENCHMARKS.md, session 4: longer intervals were no better).
CHECKPOINT_EVERY_S = 0.0
# A PASSIVE checkpoint never waits for a lock (another process's copy makes
# it return at once, busy); this bounds only reading the schema on opening.
CHECKPOINT_OPEN_TIMEOUT_S = 1.0


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite database file, asked by ``nudge``."""

    def __init__(self, path: str, *, every_s: float = CHECKPOINT_EVERY_S):
        # Absolute now: a later chdir must not point the thread at another file.
        self.path = os.path.abspath(path)
        self.every_s = every_s
        self.checkpoints = 0  # copies that ran (not busy), for tests and benchmarks
        self.busy = 0  # calls another connection's copy made return at once
        self.failures = 0  # calls that raised, or could not open the file
        self.log_frames = 0  # frames in the log at the last copy: how long the log has grown
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
        """Stop the thread; the copy it is making, if any, finishes first."""
        with self._starting:
            self._stopping.set()
        self._asked.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            # mode=rw: the store made the file; never create an empty one.
            db = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=CHECKPOINT_OPEN_TIMEOUT_S,
                                 check_same_thread=False, isolation_level=None)
        except sqlite3.Error:
            self.failures += 1  # no thread to copy: the writer's own checkpoint does it
            return
        try:
            while True:
                self._asked.wait()
                if self._stopping.is_set():
                    return
                # Cleared before the copy: a commit during it asks again, and
                # the next copy follows at once.
                self._asked.clear()
                self._checkpoint(db)
                if self.every_s > 0 and self._stopping.wait(self.every_s):
                    return
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        try:
            busy, log_frames, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            # The writer's automatic checkpoint is the backstop: a failed
            # background copy only means the next commit past the bound does it.
            self.failures += 1
            return
        if busy or log_frames < 0:  # another connection's copy, or not a WAL file
            self.busy += 1
            return
        self.checkpoints += 1
        self.log_frames = log_frames
