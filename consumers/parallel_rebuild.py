"""A rebuild from position 0 in several processes (`ledger replay --workers`).

Traces are independent, but for two things that cross them: a license's
ceiling counts the shipments of every trace citing it (projections/premises.py),
and an event id names one report ledger-wide, so two traces reporting one
event id decide between them which holds it (ledger/identity.py).  So:

1. The log's keys (trace ids; license reports apart) are cut into one
   contiguous range per worker, of about as many records each
   (``EmbeddedLog.key_ranges``).
2. Each worker, a process of its own, rebuilds its range into a store of its
   own, as ``rebuild`` does: the license reports first (every worker reads
   them all: a trace's premise rules need them), then chunk by chunk of whole
   traces.
3. The shares are copied into the one store in one transaction
   (``SQLiteProjectionStore.absorb``), without the licenses' own rows.
4. What crosses traces is computed again over the whole store: every trace
   holding an event id another trace holds too, then every license's
   ceiling and report steps.
5. The offsets are recorded, as at the end of ``rebuild``.

The stored reports, lots, alert steps and licenses are those of ``rebuild``
(tests/integration/test_parallel_rebuild.py); the alert journal, like a
rebuild's, says less than a catch-up's.

Trusting the stored digests (``digests_checked``): ``ledger replay`` checks
every record against its stored digest inside one snapshot of the log, and
the workers read the log in snapshots of their own.  They read the very
bytes checked when nobody committed to the log in between, which SQLite
tells (``EmbeddedLog.commits_watched``, begun before the check).  Should
anyone have (an ingest running beside the replay), the shares are dropped
and the log is rebuilt in this process, inside the caller's snapshot.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from consumers.log.embedded import EmbeddedLog
from consumers.log_check import check_store_belongs
from consumers.projector import (BatchCounts, collecting_less, is_license_key,
                                 record_rebuilt_offsets, rebuild, utc_now, whole_trace_chunks)
from ledger.parties import RegisteredParty
from ledger.policy import Policy
from ledger.ports import KeyRange
from projections.premises import recompute_rows, recount_licenses
from projections.sqlite_store import ShareOutOfRange, SQLiteProjectionStore
from projections.store import ProjectedBatch
from projections.trace_projection import project_batch

__all__ = ["rebuild_in_parallel", "ParallelRebuild", "workers_for", "Share", "ShareDone", "rebuild_share",
           "recount_across_traces", "PARALLEL_RECORDS_MIN", "WORKERS_MAX", "WORKER_CHUNK_RECORDS"]

# ``--workers auto``: one process per core, up to WORKERS_MAX, for a log of
# at least PARALLEL_RECORDS_MIN records; below it, one (a worker process
# takes about half a second to start and import the ledger).
PARALLEL_RECORDS_MIN = 50_000
WORKERS_MAX = 8
# Records per chunk in a worker: smaller than a rebuild's in one process
# (REBUILD_CHUNK_RECORDS, 20,000), since N workers hold N chunks at once.
# Measured on an eighth of the 1M history (one worker's share on 8 cores):
# 10.5 s CPU and 162 MB peak at 20,000 per chunk, 9.6 s and 106 MB at
# 10,000, 9.6 s and 80 MB at 5,000 (BENCHMARKS.md, session 10).
WORKER_CHUNK_RECORDS = 5_000
# Traces recomputed, or licenses recounted, per transaction after the merge.
RECOUNT_CHUNK = 1_000
# How often the parent reads the workers' progress.
PROGRESS_EVERY_S = 0.5


def workers_for(requested: int | None, records: int) -> int:
    """How many processes rebuild ``records`` records: ``requested``, or
    (None: auto) one per core up to WORKERS_MAX when there are enough
    records to be worth starting them."""
    if requested is not None:
        return max(1, requested)
    if records < PARALLEL_RECORDS_MIN:
        return 1
    return max(1, min(WORKERS_MAX, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class Share:
    """One worker's part: the log's keys in ``keys``, into the store at ``store_path``."""

    index: int
    log_path: str
    store_path: str
    keys: KeyRange
    below: dict[int, int]
    parties: list[RegisteredParty]
    policy: Policy
    chunk_records: int
    digests_checked: bool


@dataclass(frozen=True, slots=True)
class ShareDone:
    licenses: BatchCounts  # what the share made of the license reports (every share reads them all)
    traces: BatchCounts  # ...and of its own traces


# Shared with the workers (set in each worker process by _started): the
# records each has applied, and the flag that tells them to stop.
_applied = None
_stop = None


def _started(applied, stop) -> None:  # type: ignore[no-untyped-def]
    global _applied, _stop
    _applied, _stop = applied, stop


class _Stopped(Exception):
    """The rebuild was abandoned: the worker stopped between two chunks."""


def rebuild_share(share: Share) -> ShareDone:
    """In a worker process: rebuild the share's traces into its own store."""
    log = EmbeddedLog(share.log_path)
    store = SQLiteProjectionStore(share.store_path)
    licenses, traces = BatchCounts(), BatchCounts()
    try:
        store.register_parties(share.parties)
        with collecting_less(), log.snapshot():
            for chunk in whole_trace_chunks(log.read_by_key(share.below, share.keys), share.chunk_records):
                if _stop is not None and _stop.value:
                    raise _Stopped()
                outcome = project_batch(store, log.name, chunk, policy=share.policy, now=utc_now(), track=False,
                                        digests_checked=share.digests_checked)
                about_licenses = is_license_key(chunk[0].key)
                (licenses if about_licenses else traces).count(outcome)
                if _applied is not None and (share.index == 0 or not about_licenses):
                    with _applied.get_lock():
                        _applied[share.index] += len(chunk)
    finally:
        store.close()
        log.close()
    return ShareDone(licenses, traces)


def rebuild_in_parallel(
    log: EmbeddedLog,
    store: SQLiteProjectionStore,
    *,
    workers: int,
    policy: Policy,
    clock: Callable[[], datetime] = utc_now,
    chunk_records: int = WORKER_CHUNK_RECORDS,
    progress: Callable[[BatchCounts], None] | None = None,
    digests_checked: bool = False,
    log_changed: Callable[[], bool] | None = None,
) -> BatchCounts:
    """Rebuild every projection from position 0 of ``log`` into ``store``
    with ``workers`` processes (see the module's docstring, and
    ``ParallelRebuild``, which lets the caller work while they run)."""
    with ParallelRebuild(log, store, workers=workers, policy=policy, clock=clock, chunk_records=chunk_records,
                         digests_checked=digests_checked, log_changed=log_changed) as rebuilding:
        return rebuilding.finish(progress)


class ParallelRebuild:
    """A rebuild in ``workers`` processes, started when the block is
    entered; ``finish`` waits for the workers, copies their shares into
    ``store`` and counts what crosses traces.  Meanwhile the caller may do
    other work (``ledger replay`` checks the log's digests and reads the
    live store's fingerprint).  Left without ``finish`` (the check found
    damage, an error, ^C), the workers stop after their current chunk and
    their shares are removed; ``store`` holds nothing of them.

    ``digests_checked`` as ``rebuild``'s, with ``log_changed``: whether
    anyone committed to the log since before the check
    (``EmbeddedLog.commits_watched``); the workers trust the stored digests
    only if nobody has by ``finish``.  One worker, a log with fewer keys
    than workers, a store that already tracks this log: ``finish`` runs
    ``rebuild`` in this process.
    """

    def __init__(self, log: EmbeddedLog, store: SQLiteProjectionStore, *, workers: int, policy: Policy,
                 clock: Callable[[], datetime] = utc_now, chunk_records: int = WORKER_CHUNK_RECORDS,
                 digests_checked: bool = False, log_changed: Callable[[], bool] | None = None):
        self.log, self.store, self.policy, self.clock = log, store, policy, clock
        self.chunk_records, self.digests_checked, self.log_changed = chunk_records, digests_checked, log_changed
        check_store_belongs(log, store)
        self.below = log.end_offsets()
        self.shares = (log.key_ranges(self.below, workers) if workers > 1 and not store.tracked_offsets(log.name)
                       else [])
        if len(self.shares) < 2:
            self.shares = []
        self.trusting = digests_checked and log.validated_on_append and log_changed is not None
        self.paths = [Path(f"{store.path}.share-{i}") for i in range(len(self.shares))]
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._futures: list[concurrent.futures.Future[ShareDone]] = []

    def __enter__(self) -> "ParallelRebuild":
        if self.shares:
            self._start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._close()

    def _start(self) -> None:
        self._remove_shares()
        parties = self.store.registered_parties()
        # spawn, not fork: this process holds SQLite connections and threads
        # (the store's WAL checkpointer) that a forked child must not inherit.
        context = multiprocessing.get_context("spawn")
        self._applied = context.Array("q", len(self.shares))
        self._stop = context.Value("b", 0)
        jobs = [Share(i, str(self.log.path), str(path), keys, self.below, parties, self.policy, self.chunk_records,
                       self.trusting) for i, (keys, path) in enumerate(zip(self.shares, self.paths))]
        self._pool = concurrent.futures.ProcessPoolExecutor(len(jobs), mp_context=context, initializer=_started,
                                                            initargs=(self._applied, self._stop))
        # The workers start with ^C ignored (a disposition a new process
        # inherits): ^C reaches this process, which stops them between two
        # chunks, instead of each dying with a traceback of its own.
        with _interrupts_ignored():
            self._futures = [self._pool.submit(rebuild_share, job) for job in jobs]

    def finish(self, progress: Callable[[BatchCounts], None] | None = None) -> BatchCounts:
        if not self.shares:
            return self._in_this_process(progress)
        done = self._wait(progress)
        if self.trusting and self.log_changed():  # type: ignore[misc]
            # The workers may have read other bytes than those checked.
            self._close()
            return self._in_this_process(progress)
        try:
            self.store.absorb([(path, keys) for path, keys in zip(self.paths, self.shares)])
        except ShareOutOfRange:
            # A record whose log key is not its trace id (never written so by
            # ingest or the SDK): two shares may hold one trace.
            self._close()
            return self._in_this_process(progress)
        self._close()
        with collecting_less():
            recount_across_traces(self.store, policy=self.policy, clock=self.clock)
        record_rebuilt_offsets(self.log, self.store, self.below, self.clock)
        totals = BatchCounts()
        for name in ("records", "accepted", "duplicates", "conflicts", "dead_letters"):
            alike = getattr(done[0].licenses, name)  # every share applied the license reports
            setattr(totals, name, alike + sum(getattr(d.traces, name) for d in done))
        totals.batches = done[0].licenses.batches + sum(d.traces.batches for d in done)
        if progress is not None:
            progress(totals)
        return totals

    def _in_this_process(self, progress: Callable[[BatchCounts], None] | None) -> BatchCounts:
        return rebuild(self.log, self.store, policy=self.policy, clock=self.clock, progress=progress,
                       digests_checked=self.digests_checked)

    def _wait(self, progress: Callable[[BatchCounts], None] | None) -> list[ShareDone]:
        """The workers' results in share order, once all are done; the first error raised."""
        pending = set(self._futures)
        while pending:
            finished, pending = concurrent.futures.wait(pending, timeout=PROGRESS_EVERY_S,
                                                        return_when=concurrent.futures.FIRST_EXCEPTION)
            for future in finished:
                future.result()  # raises the worker's error
            if progress is not None:
                progress(BatchCounts(records=sum(self._applied[:])))
        return [f.result() for f in self._futures]

    def _close(self) -> None:
        """Stop the workers (after their current chunk), and remove their shares."""
        if self._pool is not None:
            self._stop.value = 1
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._remove_shares()

    def _remove_shares(self) -> None:
        for path in self.paths:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored inside the block (only the main thread may set it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def recount_across_traces(store: SQLiteProjectionStore, *, policy: Policy, clock: Callable[[], datetime]) -> None:
    """Once the shares are in one store: what each share could not see."""
    # Every trace holding an event id another trace holds (maybe in another
    # share): which of them holds it is decided over the whole store.
    sharing = store.traces_sharing_event_ids()
    for first in range(0, len(sharing), RECOUNT_CHUNK):
        rows = recompute_rows(store, {}, [], policy=policy, claims={}, batch_claims={},
                              also=sharing[first:first + RECOUNT_CHUNK])
        store.commit_batch(ProjectedBatch(traces=rows), [], clock())
    # Every license's ceiling, over every lot (after the recount above: it
    # may have moved a shipment from one trace to another).
    licenses = store.license_ids()
    for first in range(0, len(licenses), RECOUNT_CHUNK):
        rows = recount_licenses(store, licenses[first:first + RECOUNT_CHUNK], policy=policy)
        store.commit_batch(ProjectedBatch(traces=rows), [], clock())
