"""The trace projection: log records in, read-model rows out.

For each trace a batch touches, the trace is rebuilt from every report
version the store holds plus the new ones, and its lots and alert steps are
recomputed whole.  Recomputing the trace (not patching counters) is what
makes late and out-of-order reports land exactly where they belong.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eventsourcing.persistence import Tracking
from pydantic import ValidationError

from ledger.events import (
    LicenseGranted,
    LicenseRevoked,
    content_digest,
    describe_validation_error,
    parse_event,
)
from ledger.policy import Policy
from ledger.ports import LogRecord
from ledger.trace import Outcome, Trace
from ledger.account import TraceAccount
from projections.premises import recompute_rows, settle
from projections.rows import ts
from projections.store import DeadLetter, ProjectedBatch, ProjectionStore, TraceRows

__all__ = ["project_batch", "BatchOutcome", "rebuild_trace", "tracking_name", "TraceCache", "TRACE_CACHE_MAX"]

# Traces a projector keeps parsed between its batches (least recently used
# dropped first).  A trace of this workload holds ~7 report versions.
TRACE_CACHE_MAX = 20_000


def tracking_name(log_name: str, partition: int) -> str:
    return f"{log_name}#{partition}"


@dataclass(slots=True)
class BatchOutcome:
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    traces: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


def rebuild_trace(trace_id: str, stored: Sequence[tuple[str, str]]) -> Trace:
    """The trace aggregate from stored (payload, digest) versions."""
    trace = Trace(trace_id)
    for payload, digest in stored:
        trace.record(parse_event(payload), digest)
    return trace


class TraceCache:
    """Traces this process rebuilt and committed, so the next batch touching
    one need not parse and record all its stored versions again.

    The store stays the source of truth: a cached trace is used only when the
    versions the store holds for it now are exactly the ones it was built
    from (compared as (payload, digest) pairs), so a trace another process
    changed is rebuilt.  It holds report versions only, which only the
    partition's owner appends; license rows are always read from the store.
    Bounded (``max_traces``, least recently used dropped first), and dropped
    whole when the store's offsets are not the ones this process last
    committed, or when a commit fails.
    """

    def __init__(self, max_traces: int = TRACE_CACHE_MAX):
        self.max_traces = max_traces
        self._traces: OrderedDict[str, tuple[frozenset[tuple[str, str]], Trace]] = OrderedDict()
        self._offsets: dict[int, int] | None = None  # tracked offsets after our last commit
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._traces)

    def clear(self) -> None:
        self._traces.clear()
        self._offsets = None

    def check_offsets(self, tracked: dict[int, int]) -> None:
        """Drop everything unless ``tracked`` is what this process last committed."""
        if tracked != self._offsets:
            self._traces.clear()
        self._offsets = dict(tracked)

    def committed(self, offsets: dict[int, int]) -> None:
        if self._offsets is not None:
            self._offsets.update(offsets)

    def take(self, trace_id: str, stored: Sequence[tuple[str, str]]) -> Trace:
        """The trace built from ``stored``, removed from the cache (the caller
        records into it; ``keep`` puts it back once committed)."""
        entry = self._traces.pop(trace_id, None)
        if entry is not None and entry[0] == frozenset(stored):
            self.hits += 1
            return entry[1]
        self.misses += 1
        return rebuild_trace(trace_id, stored)

    def peek(self, trace_id: str, stored: Sequence[tuple[str, str]]) -> Trace:
        """Like ``take`` but leaves the trace cached: the caller only reads it."""
        entry = self._traces.get(trace_id)
        if entry is not None and entry[0] == frozenset(stored):
            self._traces.move_to_end(trace_id)
            return entry[1]
        return rebuild_trace(trace_id, stored)

    def keep(self, trace_id: str, versions: frozenset[tuple[str, str]], trace: Trace) -> None:
        trace.collect_events()  # the aggregate's pending events are not needed, and would pile up
        self._traces[trace_id] = (versions, trace)
        self._traces.move_to_end(trace_id)
        while len(self._traces) > self.max_traces:
            self._traces.popitem(last=False)


def project_batch(
    store: ProjectionStore,
    log_name: str,
    records: Sequence[LogRecord],
    *,
    policy: Policy,
    clock: datetime,
    cache: TraceCache | None = None,
) -> BatchOutcome:
    """Apply one polled batch to the store in one transaction, with tracking.

    ``cache`` (optional) keeps parsed traces between the batches of one
    process; the rows written are the same with or without it."""
    outcome = BatchOutcome(records=len(records))
    batch = ProjectedBatch()
    by_trace: dict[str, list[tuple[object, str]]] = defaultdict(list)
    license_events: list[object] = []
    last_offset: dict[int, int] = {}
    for record in records:
        last_offset[record.partition] = max(record.offset, last_offset.get(record.partition, -1))
        # Check data right after it is read: the log may hold anything a
        # producer sent (Kafka does not validate), and a bad record must
        # neither crash the projector nor be skipped silently.
        try:
            event = parse_event(record.value)
            if event.recorded_at is None:
                raise _Unstamped(event.event_id)
            future = event.future_problem()
            if future is not None:  # what the SDK's clock stamped, checked again
                raise _Unstamped(event.event_id, str(future))
        except (ValidationError, _Unstamped, UnicodeDecodeError) as error:
            batch.dead_letters.append(
                DeadLetter(log_name, record.partition, record.offset, record.key, record.value, _why(error))
            )
            continue
        digest = content_digest(event)
        if isinstance(event, (LicenseGranted, LicenseRevoked)):
            batch.licenses.append((event.license_id, event.event_id, digest, event.model_dump_json()))
            license_events.append(event)
            outcome.accepted += 1
            continue
        by_trace[event.trace_id].append((event, digest))

    if cache is not None:
        cache.check_offsets(store.tracked_offsets(log_name))
    stored = store.load_versions(sorted(by_trace))
    fresh: dict[str, tuple[list[tuple[str, str, str, str]], TraceAccount]] = {}
    built: dict[str, tuple[frozenset[tuple[str, str]], Trace]] = {}
    for trace_id in sorted(by_trace):
        trace = cache.take(trace_id, stored[trace_id]) if cache is not None else rebuild_trace(trace_id, stored[trace_id])
        new_versions = []
        replaced = False
        for event, digest in by_trace[trace_id]:
            result = trace.record(event, digest)  # type: ignore[arg-type]
            if result is Outcome.DUPLICATE:
                outcome.duplicates += 1
                continue
            outcome.duplicates += result is Outcome.EARLIER_COPY
            outcome.conflicts += result is Outcome.CONFLICT
            outcome.accepted += result is Outcome.ACCEPTED
            replaced = replaced or result is Outcome.EARLIER_COPY
            new_versions.append((event.event_id, digest, ts(event.recorded_at), event.model_dump_json()))  # type: ignore[attr-defined]
        if cache is not None and not replaced:
            # What the store will hold for this trace once the batch commits
            # (an earlier copy replaces a stored payload: simply not cached).
            built[trace_id] = (frozenset(stored[trace_id]) | {(v[3], v[1]) for v in new_versions}, trace)
        if not new_versions:
            continue  # every report was already known: nothing changes
        fresh[trace_id] = (new_versions, trace.account())
    # Rows with license premise alerts, plus the traces and license ceilings
    # this batch's license reports affect (projections/premises.py).
    rebuild = cache.peek if cache is not None else rebuild_trace
    recomputed = recompute_rows(store, fresh, license_events, policy=policy, rebuild=rebuild)
    batch.traces.extend(recomputed.rows)
    outcome.traces = len(batch.traces)
    outcome.dead_letters = len(batch.dead_letters)
    outcome.dead = batch.dead_letters
    trackings = [Tracking(tracking_name(log_name, p), o) for p, o in sorted(last_offset.items())]
    try:
        store.commit_batch(batch, trackings, clock)
    except BaseException:
        if cache is not None:
            cache.clear()  # what we built was not stored
        raise
    if cache is not None:
        cache.committed(last_offset)
        for trace_id, (versions, trace) in built.items():
            cache.keep(trace_id, versions, trace)
    # Another projector may have committed a license or a trace these rows
    # depend on while we computed them: re-read and fix (projections/premises.py).
    settle(store, recomputed, policy=policy, clock=clock, rebuild=rebuild)
    return outcome


class _Unstamped(ValueError):
    """A record the log should never hold: unstamped, or dated after its stamp."""

    def __init__(self, event_id: str, why: str | None = None):
        super().__init__(why or f"event {event_id!r} has no recorded_at: the log only holds stamped reports")


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(str(p) for p in describe_validation_error(error))
    return str(error)
