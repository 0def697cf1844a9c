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

import contextlib
import glob
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
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
from projections.sqlite_store import ShareOutOfRange, SQLiteProjectionStore, remove_store_files
from projections.store import ProjectedBatch
from projections.trace_projection import project_batch

__all__ = ["rebuild_in_parallel", "ParallelRebuild", "workers_for", "Share", "ShareDone", "rebuild_share", "WorkerLost",
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
# How long a worker told to stop may take to finish its chunk (a chunk of
# 5,000 records takes about half a second) before it is killed.
WORKER_STOP_WAIT_S = 60


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
# records each has applied, and the flag that tells them to stop; and the
# process that started them, whose end (killed: nobody sets the flag) a
# worker notices between two chunks.
_applied = None
_stop = None
_parent: int | None = None
_made: dict[str, os.stat_result] = {}  # the share this worker made: its file, as first made


def _started(applied, stop, parent: int) -> None:  # type: ignore[no-untyped-def]
    global _applied, _stop, _parent
    _applied, _stop, _parent = applied, stop, parent


class _Stopped(Exception):
    """The rebuild was abandoned: the worker stopped between two chunks."""


def _abandoned() -> bool:
    """Told to stop, or left alone: the replay that started this worker is
    gone (killed: nobody will take its share), so it has another parent now."""
    return bool(_stop is not None and _stop.value) or (_parent is not None and os.getppid() != _parent)


def rebuild_share(share: Share) -> ShareDone:
    """In a worker process: rebuild the share's traces into its own store."""
    log = EmbeddedLog(share.log_path)
    store = SQLiteProjectionStore(share.store_path)
    _made[share.store_path] = os.stat(share.store_path)
    licenses, traces = BatchCounts(), BatchCounts()
    try:
        store.register_parties(share.parties)
        with collecting_less(), log.snapshot():
            for chunk in whole_trace_chunks(log.read_by_key(share.below, share.keys), share.chunk_records):
                if _abandoned():
                    raise _Stopped()
                outcome = project_batch(store, log.name, chunk, policy=share.policy, now=utc_now(), track=False,
                                        digests_checked=share.digests_checked)
                about_licenses = is_license_key(chunk[0].key)
                (licenses if about_licenses else traces).count(outcome)
                if _applied is not None and (share.index == 0 or not about_licenses):
                    _applied[share.index] += len(chunk)
    finally:
        store.close()
        log.close()
    return ShareDone(licenses, traces)


def _remove_own_share(path: str, made: os.stat_result) -> None:
    """A share nobody will take (the replay is gone) removed by its worker,
    unless the file there now is another's: a new replay's, of the same name."""
    with contextlib.suppress(FileNotFoundError):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):
            remove_store_files(path)


def _work(share: Share, applied, stop, parent: int,  # type: ignore[no-untyped-def]
          results: multiprocessing.connection.Connection) -> None:
    """A worker process's life: its share rebuilt, the outcome sent back (its
    counts, or the error it met), and the end.  Left alone (the replay was
    killed, maybe before this process even started: so ``parent`` is the
    replay's pid as the replay saw it), it stops between two chunks,
    removes its share and ends."""
    _started(applied, stop, parent)
    try:
        outcome: tuple[str, object] = ("done", rebuild_share(share))
    except _Stopped:
        outcome = ("stopped", None)
    except Exception as error:  # the replay raises it
        outcome = ("error", error)
    try:
        try:
            results.send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError):  # an error that does not pickle
            results.send(("error", RuntimeError(f"replay worker {share.index}: {outcome[1]!r}")))
    except OSError:  # BrokenPipeError: the replay is gone
        pass
    finally:
        results.close()
    if os.getppid() != parent and share.store_path in _made:  # nobody will take the share
        _remove_own_share(share.store_path, _made[share.store_path])


class WorkerLost(RuntimeError):
    """A worker process ended without sending its result (killed, out of memory)."""


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
        self._workers: list[tuple[multiprocessing.process.BaseProcess, multiprocessing.connection.Connection]] = []
        self.processes = 1  # how many rebuilt it, once finished: the workers, or this process alone

    def __enter__(self) -> "ParallelRebuild":
        if self.shares:
            self._start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._close()

    def _start(self) -> None:
        for left in Path(self.store.path).parent.glob(f"{glob.escape(Path(self.store.path).name)}.share-*"):
            left.unlink(missing_ok=True)  # a killed replay's, as many as it had (and their -wal, .lock, ...)
        parties = self.store.registered_parties()
        # spawn, not fork: this process holds SQLite connections and threads
        # (the store's WAL checkpointer) that a forked child must not inherit.
        context = multiprocessing.get_context("spawn")
        # Without locks: each worker writes only its own count, and only this
        # process the flag.  (A lock is a named semaphore, which a replay
        # killed outright would leave for multiprocessing to warn about.)
        self._applied = context.Array("q", len(self.shares), lock=False)
        self._stop = context.Value("b", 0, lock=False)
        jobs = [Share(i, str(self.log.path), str(path), keys, self.below, parties, self.policy, self.chunk_records,
                       self.trusting) for i, (keys, path) in enumerate(zip(self.shares, self.paths))]
        # The workers start with ^C held (SIGINT blocked: a new process
        # inherits its parent's signal mask) and never take it: ^C reaches
        # this process, which stops them between two chunks, instead of each
        # dying with a traceback of its own.  Held here too while they
        # start, not ignored: a ^C meanwhile is delivered once they have.
        try:
            with _interrupts_held():
                for job in jobs:
                    receiving, sending = context.Pipe(duplex=False)
                    worker = context.Process(target=_work, args=(job, self._applied, self._stop, os.getpid(),
                                                                 sending),
                                             name=f"ledger replay share {job.index}", daemon=True)
                    worker.start()
                    # Only the worker holds its sending end: a worker that dies
                    # reads here as the end of its pipe, and this process's death
                    # as a broken pipe there.
                    sending.close()
                    self._workers.append((worker, receiving))
        except BaseException:  # SIGTERM, or ^C taken by another thread: the block is not entered
            self._close()
            raise

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
        self.processes = len(self.shares)
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
        done: dict[int, ShareDone] = {}
        waiting = {receiving: index for index, (_worker, receiving) in enumerate(self._workers)}
        while waiting:
            for receiving in multiprocessing.connection.wait(list(waiting), timeout=PROGRESS_EVERY_S):
                index = waiting.pop(receiving)  # type: ignore[call-overload]
                worker = self._workers[index][0]
                try:
                    kind, value = receiving.recv()  # type: ignore[union-attr]
                except EOFError:
                    worker.join(WORKER_STOP_WAIT_S)
                    raise WorkerLost(f"replay worker {index} (pid {worker.pid}) ended without its result "
                                     f"(exit code {worker.exitcode}: killed, or out of memory?); nothing was "
                                     f"replaced; run it again, or with --workers 1") from None
                if kind == "error":
                    raise value
                if kind != "done":
                    raise WorkerLost(f"replay worker {index} (pid {worker.pid}) stopped before its share was rebuilt")
                done[index] = value
            if progress is not None:
                progress(BatchCounts(records=sum(self._applied[:])))
        return [done[index] for index in range(len(self._workers))]

    def _close(self) -> None:
        """Stop the workers (after their current chunk), and remove their shares."""
        if self._workers:
            self._stop.value = 1
            for worker, receiving in self._workers:
                worker.join(WORKER_STOP_WAIT_S)
                if worker.is_alive():  # stuck: it would only hold its share open
                    worker.kill()
                    worker.join()
                receiving.close()
            self._workers = []
        self._remove_shares()

    def _remove_shares(self) -> None:
        for path in self.paths:
            remove_store_files(path)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT blocked in this thread inside the block, and delivered after it
    if it came meanwhile; processes started inside keep it blocked."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


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
