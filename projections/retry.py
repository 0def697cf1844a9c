"""One way to try an operation again: a bounded number of attempts, a wait
between them that may grow, and a say in which failures are worth it.

Used wherever the ledger retries: a PostgreSQL store across lost
connections and for its batch lock, the credentials store's reconnect, a
CLI opening a SQLite store another process is creating, the projector
backing off a locked SQLite store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["retry"]

R = TypeVar("R")


def retry(
    operation: Callable[[], R],
    *,
    attempts_max: int,
    retryable: Callable[[Exception], bool],
    wait_s: float = 0.0,
    backoff: float = 1.0,
    failed: Callable[[Exception, int], None] | None = None,
    exhausted: Callable[[Exception, int], BaseException] | None = None,
) -> R:
    """Run ``operation`` until it returns, at most ``attempts_max`` times.

    A failure ``retryable`` refuses propagates at once.  After a retryable
    one, ``failed(error, attempt)`` runs (to drop a connection, to log),
    then, if attempts remain, the wait: ``wait_s`` before the second
    attempt, times ``backoff`` before each further one.  When none remain,
    the error propagates, or what ``exhausted(error, attempts)`` makes of it
    is raised from it.
    """
    if attempts_max < 1:
        raise ValueError(f"attempts_max: {attempts_max!r} must be at least 1")
    for attempt in range(1, attempts_max + 1):
        try:
            return operation()
        except Exception as error:
            if not retryable(error):
                raise
            if failed is not None:
                failed(error, attempt)
            if attempt == attempts_max:
                if exhausted is None:
                    raise
                raise exhausted(error, attempt) from error
            time.sleep(wait_s * backoff ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover
