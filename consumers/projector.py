"""The projector loop for logs read by position (the embedded log, or Kafka
read partition by partition for replay): poll a batch, apply it with
tracking, repeat until caught up.  The Kafka consumer-group loop lives in
consumers/kafka/ and calls the same ``project_batch``."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from eventsourcing.persistence import IntegrityError, OperationalError, Tracking

from consumers.log_check import check_store_belongs
from ledger.events import LICENSE_KEY_PREFIX
from ledger.policy import Policy
from ledger.ports import EventLog, LogRecord
from projections.retry import retry
from projections.store import ProjectedBatch, ProjectionStore
from projections.trace_projection import BatchOutcome, project_batch, tracking_name
from projections.warm_traces import WarmTraces

__all__ = ["catch_up", "rebuild", "collecting_less", "whole_trace_chunks", "is_license_key", "record_rebuilt_offsets", "BatchCounts", "POLL_RECORDS_MAX", "REBUILD_CHUNK_RECORDS", "utc_now"]

# Records per catch-up batch, and so per store transaction.  Each batch
# rewrites the rows of every trace it touches and commits once, so a larger
# batch touches each trace fewer times (BENCHMARKS.md, "Chasing the targets":
# 20,000 was no faster and took more memory).  Memory is bounded by the batch.
POLL_RECORDS_MAX = 10_000
# Records per chunk of whole traces in a rebuild (the chunk's reports, parsed,
# are what a rebuild holds in memory).
REBUILD_CHUNK_RECORDS = 20_000
# A catch-up that applied this many records refreshes the store's planner
# statistics before it returns (ProjectionStore.refresh_statistics).
STATISTICS_AFTER_RECORDS = 10_000
# Another projector holding the SQLite store's write lock: retry the batch.
BUSY_RETRIES_MAX = 100
BUSY_BACKOFF_S = 0.05

R = TypeVar("R")


# Python's cyclic garbage collector runs a young-generation pass every 700
# net allocations.  A batch allocates millions of short-lived objects that
# reference counting frees (parsed reports, rows), and every pass walks the
# batch's live ones: measured, a quarter of a rebuild's CPU time
# (BENCHMARKS.md).  Projecting, the pass runs every 100,000 allocations.
GC_YOUNG_THRESHOLD = 100_000


@contextlib.contextmanager
def collecting_less() -> Iterator[None]:
    """Run the cyclic garbage collector's young pass less often inside the block."""
    before = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class BatchCounts:
    """What the applied batches said, summed; every projector loop keeps one."""

    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    batches: int = 0

    def count(self, outcome: BatchOutcome) -> None:
        self.records += outcome.records
        self.accepted += outcome.accepted
        self.duplicates += outcome.duplicates
        self.conflicts += outcome.conflicts
        self.dead_letters += outcome.dead_letters
        self.batches += 1


def catch_up(
    log: EventLog,
    store: ProjectionStore,
    *,
    policy: Policy,
    clock: Callable[[], datetime] = utc_now,
    batch_max: int = POLL_RECORDS_MAX,
    progress: Callable[[BatchCounts], None] | None = None,
    trust_recorded_at: bool = False,
) -> BatchCounts:
    """Apply everything in ``log`` beyond the store's tracked offsets.

    ``trust_recorded_at``: keep the recorded_at a Kafka producer wrote (an
    operator's migration switch; project_batch).

    Safe to interrupt anywhere: each batch and its offsets commit together,
    so a restart resumes after the last committed batch.  Safe to run twice
    at once: when another projector has committed a batch first, the store
    refuses ours whole, and this one resumes after the other's.

    A store built from another log is refused before anything is read
    (consumers/log_check.py ``LogMismatch``).
    """
    check_store_belongs(log, store)
    with collecting_less():
        return _catch_up(log, store, policy=policy, clock=clock, batch_max=batch_max, progress=progress,
                         trust_recorded_at=trust_recorded_at)


def _catch_up(
    log: EventLog,
    store: ProjectionStore,
    *,
    policy: Policy,
    clock: Callable[[], datetime],
    batch_max: int,
    progress: Callable[[BatchCounts], None] | None,
    trust_recorded_at: bool = False,
) -> BatchCounts:
    totals = BatchCounts()
    busy = _Busy()
    warm = WarmTraces()
    tracked = store.tracked_offsets(log.name)
    for partition in log.partitions():
        start = tracked.get(partition, -1) + 1
        while True:
            records = log.read(partition, start, batch_max)
            if not records:
                break
            try:
                outcome = busy.retrying(lambda: project_batch(
                    store, log.name, records, policy=policy, now=clock(), warm=warm,
                    trust_recorded_at=trust_recorded_at))
            except IntegrityError:
                overtaken = store.tracked_offsets(log.name).get(partition, -1) + 1
                if overtaken <= start:
                    raise  # nobody else moved on: not a race, a real integrity error
                start = overtaken
                continue
            totals.count(outcome)
            start = records[-1].offset + 1
            if progress is not None:
                progress(totals)
    if totals.records >= STATISTICS_AFTER_RECORDS:
        store.refresh_statistics()
    busy.retrying(lambda: store.sweep(clock()))  # journals the alerts whose deadline passed since the last batch
    return totals


def rebuild(
    log: EventLog,
    store: ProjectionStore,
    *,
    policy: Policy,
    clock: Callable[[], datetime] = utc_now,
    chunk_records: int = REBUILD_CHUNK_RECORDS,
    progress: Callable[[BatchCounts], None] | None = None,
    digests_checked: bool = False,
    trust_recorded_at: bool = False,
) -> BatchCounts:
    """Rebuild every projection from position 0 of ``log`` into ``store``.

    Read in offset order, a trace's reports are spread over the whole log,
    so ``catch_up`` folds a long-lived trace again in every batch that brings
    one of its reports.  A log that can hand its records over grouped by
    trace (``reads_by_key``: the embedded log) is applied license reports
    first, then a chunk of whole traces at a time: each trace is folded
    once.  The stored rows are the same either way (the fold does not depend
    on arrival order; tests/integration/test_rebuild.py); the alert journal
    says less, since the transitions a trace would have gone through on the
    way are never computed.

    Offsets are recorded once, at the end.  Interrupted before that, the
    store holds whole traces and no offsets: the next ``catch_up`` (or
    rebuild) applies the log again from 0, and what is already held comes
    back as duplicates, so nothing is counted twice.

    Any other log, or a store that already tracks this log, is caught up
    (``trust_recorded_at`` as there).

    ``digests_checked``: the caller checked every record below the log's end
    offsets against the digest stored beside it (consumers/log_check.py
    ``verify_log``, damage refused) and calls this inside the same
    ``log.snapshot()``, so the rebuild reads the very bytes checked.  On a
    log that takes only validated reports (``validated_on_append``) the
    rebuild then trusts each record's stored digest instead of computing it
    again (projections/trace_projection.py ``project_batch``): a report's
    digest is computed once, when it is written, and its bytes are checked
    against it once per replay.  Any other log's digests are computed here.
    """
    check_store_belongs(log, store)
    if not log.reads_by_key or store.tracked_offsets(log.name):
        return catch_up(log, store, policy=policy, clock=clock, progress=progress,
                        trust_recorded_at=trust_recorded_at)
    with collecting_less():
        return _rebuild(log, store, policy=policy, clock=clock, chunk_records=chunk_records, progress=progress,
                        digests_checked=digests_checked and log.validated_on_append,
                        trust_recorded_at=trust_recorded_at)


def _rebuild(
    log: EventLog,
    store: ProjectionStore,
    *,
    policy: Policy,
    clock: Callable[[], datetime],
    chunk_records: int,
    progress: Callable[[BatchCounts], None] | None,
    digests_checked: bool,
    trust_recorded_at: bool,
) -> BatchCounts:
    below = log.end_offsets()
    totals = BatchCounts()

    def apply(chunk: list[LogRecord]) -> None:
        totals.count(project_batch(store, log.name, chunk, policy=policy, now=clock(), track=False,
                                   digests_checked=digests_checked, trust_recorded_at=trust_recorded_at))
        if progress is not None:
            progress(totals)

    for chunk in whole_trace_chunks(log.read_by_key(below), chunk_records):
        apply(chunk)
    record_rebuilt_offsets(log, store, below, clock)
    return totals


def whole_trace_chunks(records: Iterable[LogRecord], chunk_records: int) -> Iterator[list[LogRecord]]:
    """``records`` as ``read_by_key`` gives them, in chunks of about
    ``chunk_records``: cut only between keys, so no trace is split over two
    chunks, and between the license reports and the traces."""
    chunk: list[LogRecord] = []
    for record in records:
        if chunk and record.key != chunk[-1].key and (
                len(chunk) >= chunk_records or is_license_key(record.key) != is_license_key(chunk[-1].key)):
            yield chunk
            chunk = []
        chunk.append(record)
    if chunk:
        yield chunk


def is_license_key(key: str | None) -> bool:
    """A record about a license (its log key ``license:<id>``), not about a trace."""
    return bool(key) and key.startswith(LICENSE_KEY_PREFIX)  # type: ignore[union-attr]


def record_rebuilt_offsets(log: EventLog, store: ProjectionStore, below: dict[int, int],
                           clock: Callable[[], datetime]) -> None:
    """A rebuild's end: the offsets below ``below`` recorded as applied, the
    planner's statistics refreshed, the alerts due by now journaled."""
    last = {p: end - 1 for p, end in sorted(below.items()) if end > 0}
    try:
        store.commit_batch(ProjectedBatch(), [Tracking(tracking_name(log.name, p), o) for p, o in last.items()],
                           clock())
    except IntegrityError:
        # Another projector recorded these offsets (or later ones) first; it
        # applied the same records, and applying them twice changed nothing.
        tracked = store.tracked_offsets(log.name)
        if any(tracked.get(p, -1) < offset for p, offset in last.items()):
            raise
    store.refresh_statistics()
    store.sweep(clock())  # journals the alerts whose deadline passed since the last batch


class _Busy:
    """Backs off a store busy with another projector, at most BUSY_RETRIES_MAX
    times in all over one catch-up.

    SQLite: the store's transactions begin deferred, so one that reads first
    can lose the write lock to another projector and fail at once with
    "database is locked" instead of waiting; nothing of it was written, and
    doing it again is safe.  Any other error, or one more lock when the
    retries are spent, is raised.
    """

    def __init__(self) -> None:
        self.retries = 0

    def retrying(self, operation: Callable[[], R]) -> R:
        return retry(operation, attempts_max=BUSY_RETRIES_MAX + 1, retryable=self._worth_retrying,
                     wait_s=BUSY_BACKOFF_S)

    def _worth_retrying(self, error: Exception) -> bool:
        if not isinstance(error, OperationalError) or "locked" not in str(error) or self.retries >= BUSY_RETRIES_MAX:
            return False
        self.retries += 1
        return True
