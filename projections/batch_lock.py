"""One batch at a time across the projectors sharing a store.

A batch reads what the store holds (a trace's earlier versions, the licenses
its lots cite, the lots citing a license) before it commits rows computed
from it.  A license and the export citing it may reach two projectors at
once (two Kafka partitions, two processes), and each would compute without
the other's report.  So every batch holds the store's batch lock from its
first read to its commit (``projections.trace_projection.project_batch``):
the second projector reads only after the first committed, and the stored
rows are those of one arrival order.

The lock is the store's own ``ProjectionWriter.exclusive()``: for PostgreSQL
an advisory lock, with a fencing token checked in the commit transaction;
for a SQLite file, ``path_lock`` below, an flock on ``<realpath of store>.lock``
beside it; for a store in this process's memory, nothing.
It is re-entrant within one thread, and only within one thread: a projector
publishing its alerts inside its batch takes it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from projections.store import ProjectionWriter, StoreUnavailable

__all__ = ["exclusive", "path_lock", "LOCK_TIMEOUT_S"]

LOCK_TIMEOUT_S = 20.0  # waiting for another projector's batch (well under Kafka's max_poll_interval_ms)
LOCK_POLL_S = 0.005


@contextlib.contextmanager
def exclusive(store: ProjectionWriter) -> Iterator[None]:
    """Hold ``store``'s batch lock for the duration of the block."""
    with store.exclusive():
        yield


_held = threading.local()


@contextlib.contextmanager
def path_lock(path: str) -> Iterator[None]:
    """An flock on ``<path>.lock``, re-entrant within one thread.

    Also taken while a SQLite store is first opened: two processes creating
    the same new store file at once race in the library's table migration
    ("Failed to record tracking for __migration__ 1").

    Keyed on the file, not its spelling: "store.db" and "/abs/store.db" (or
    a symlink to it) are one lock, so a thread holding it under one name
    re-enters under the other instead of waiting on itself.
    """
    held: set[str] = _held.__dict__.setdefault("paths", set())
    path = os.path.realpath(path)
    if path in held:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(Path(path + ".lock"), "a+b") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"store {path!r} stayed locked by another projector "
                                           f"for {LOCK_TIMEOUT_S:g} s") from None
                time.sleep(LOCK_POLL_S)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)
