"""The trace projection: log records in, read-model rows out.

For each trace a batch touches, the trace is rebuilt from every report
version the store holds plus the new ones, and its lots and alert steps are
recomputed whole.  Recomputing the trace (not patching counters) is what
makes late and out-of-order reports land exactly where they belong.
"""

from __future__ import annotations

from collections import defaultdict
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
from ledger.account import TraceAccount, Version
from ledger.identity import Claim, first_claim
from ledger.parties import by_id, party_problems
from projections.batch_lock import exclusive
from projections.premises import recompute_rows
from projections.rows import ts
from projections.store import DeadLetter, ProjectedBatch, ProjectionStore
from projections.warm_traces import WarmTraces

__all__ = ["project_batch", "BatchOutcome", "rebuild_trace", "tracking_name"]


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
    """The trace aggregate restored from stored (payload, digest) versions."""
    return Trace.restored(trace_id, (Version(parse_event(payload), digest) for payload, digest in stored))


def contested(stored: dict[str, list[Claim]], added: dict[str, list[Claim]]) -> dict[str, list[Claim]]:
    """The claims on event ids one reporter holds in more than one trace
    (stored and this batch's together): the only ones that can change an account."""
    out: dict[str, list[Claim]] = {}
    for event_id in stored.keys() | added.keys():
        on_it = [*stored.get(event_id, ()), *added.get(event_id, ())]
        if len(on_it) < 2:
            continue
        traces: dict[str, set[str]] = {}
        for trace_id, _d, _r, reporter in on_it:
            traces.setdefault(reporter, set()).add(trace_id)
        if any(len(held) > 1 for held in traces.values()):
            out[event_id] = on_it
    return out


def claims_moved(stored: dict[str, list[Claim]], added: dict[str, list[Claim]]) -> set[str]:
    """Traces holding an event id (stored) whose first recorded holder the
    batch changes: each must be recomputed, though it has no new report."""
    out: set[str] = set()
    for event_id, new in added.items():
        before = stored.get(event_id)
        if not before:
            continue
        for reporter in sorted({by for _t, _d, _r, by in new}):
            was = first_claim(before, reporter=reporter)
            now = first_claim([*before, *new], reporter=reporter)
            if was is not None and now is not None and was[2] != now[2]:
                out.update(trace_id for trace_id, _d, _r, by in before if by == reporter)
    return out


def project_batch(
    store: ProjectionStore,
    log_name: str,
    records: Sequence[LogRecord],
    *,
    policy: Policy,
    clock: datetime,
    track: bool = True,
    warm: WarmTraces | None = None,
    trust_recorded_at: bool = False,
) -> BatchOutcome:
    """Apply one polled batch to the store in one transaction, with tracking.

    A record whose recorded_at is not the ledger's own (Kafka: any producer
    may write) is stamped here: with the log's append time, or ``clock``
    when the log keeps none (``LogRecord.stamped_by_ledger``); never the
    sender's claim, unless ``trust_recorded_at`` (an operator migrating a
    system of record, as ``ledger ingest --trust-recorded-at``).

    Holds the store's batch lock from the first read to the commit
    (projections/batch_lock.py): what the batch reads cannot change under it.
    ``track=False`` leaves the offsets alone, for a rebuild that applies the
    log in another order than its offsets and records them at its end.
    ``warm`` keeps the traces folded between batches
    (projections/warm_traces.py), for a projector that polls again and again.
    """
    with exclusive(store):
        if warm is None:
            return _project_batch(store, log_name, records, policy=policy, clock=clock, track=track, warm=None,
                                  trust_recorded_at=trust_recorded_at)
        warm.check(store.writer_mark())
        try:
            return _project_batch(store, log_name, records, policy=policy, clock=clock, track=track, warm=warm,
                                  trust_recorded_at=trust_recorded_at)
        except BaseException:
            warm.forget()
            raise


def _project_batch(
    store: ProjectionStore,
    log_name: str,
    records: Sequence[LogRecord],
    *,
    policy: Policy,
    clock: datetime,
    track: bool,
    warm: WarmTraces | None,
    trust_recorded_at: bool = False,
) -> BatchOutcome:
    outcome = BatchOutcome(records=len(records))
    batch = ProjectedBatch()
    # Who may appear in a report (ledger/parties.py): read once per batch,
    # under the batch lock.  Empty: the ledger runs open.
    registry = by_id(store.registered_parties())
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
            if not record.stamped_by_ledger and not trust_recorded_at:
                event = event.stamped(record.appended_at or clock, overwrite=True)
            if event.recorded_at is None:
                raise _Unstamped(event.event_id)
            future = event.future_problem()
            if future is not None:  # dated beyond the skew after the ledger's stamp
                raise _Unstamped(event.event_id, str(future))
            unknown = party_problems(event, registry)
            if unknown:  # a producer writing around ingest and the SDK
                raise _Unstamped(event.event_id, "; ".join(str(p) for p in unknown))
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

    kept = warm.take(sorted(by_trace)) if warm is not None else {}
    stored = store.load_versions(sorted(set(by_trace) - set(kept)))
    held: dict[str, Trace] = {}  # every trace of the batch, as it stands after it
    traces: dict[str, Trace] = {}
    new_by_trace: dict[str, list[tuple[str, str, str, str]]] = {}
    batch_claims: dict[str, list[Claim]] = {}  # the versions this batch adds, by event id
    for trace_id in sorted(by_trace):
        trace = kept.get(trace_id) or rebuild_trace(trace_id, stored[trace_id])
        held[trace_id] = trace
        new_versions = []
        for event, digest in by_trace[trace_id]:
            result = trace.record(event, digest)  # type: ignore[arg-type]
            if result is Outcome.DUPLICATE:
                outcome.duplicates += 1
                continue
            outcome.duplicates += result is Outcome.EARLIER_COPY
            outcome.conflicts += result is Outcome.CONFLICT
            outcome.accepted += result is Outcome.ACCEPTED
            new_versions.append((event.event_id, digest, ts(event.recorded_at), event.model_dump_json()))  # type: ignore[attr-defined]
            batch_claims.setdefault(event.event_id, []).append(  # type: ignore[attr-defined]
                (trace_id, digest, event.recorded_at, event.reporter))  # type: ignore[attr-defined]
        if not new_versions:
            continue  # every report was already known: nothing changes
        traces[trace_id] = trace
        new_by_trace[trace_id] = new_versions
    # An event id names one report ledger-wide (ledger/identity.py): one
    # lookup of every event id the recomputed traces hold, across traces.
    ids = sorted({v.event_id for trace in traces.values() for v in trace.versions()})
    stored_claims = store.event_claims(ids) if ids else {}
    claims = contested(stored_claims, batch_claims)
    fresh: dict[str, tuple[list[tuple[str, str, str, str]], TraceAccount]] = {
        trace_id: (new_by_trace[trace_id], trace.account(claims=claims)) for trace_id, trace in traces.items()
    }
    # Traces not in this batch whose claims it changed: the batch's version
    # of an event id was recorded before theirs (or it moves which trace
    # holds the first).
    moved = sorted(claims_moved(stored_claims, batch_claims) - set(fresh))

    def accounts_for(trace_ids: list[str]) -> dict[str, TraceAccount]:
        held = store.load_versions(trace_ids)
        rebuilt = {t: rebuild_trace(t, held[t]) for t in trace_ids}
        wanted = sorted({v.event_id for trace in rebuilt.values() for v in trace.versions()})
        on_them = contested(store.event_claims(wanted) if wanted else {}, batch_claims)
        return {t: trace.account(claims=on_them) for t, trace in rebuilt.items()}

    # Rows with license premise alerts, plus the traces and license ceilings
    # this batch's license reports affect (projections/premises.py).
    batch.traces.extend(recompute_rows(store, fresh, license_events, policy=policy, accounts_for=accounts_for,
                                       also=moved))
    outcome.traces = len(batch.traces)
    outcome.dead_letters = len(batch.dead_letters)
    outcome.dead = batch.dead_letters
    trackings = [Tracking(tracking_name(log_name, p), o) for p, o in sorted(last_offset.items()) if track]
    batch.writer_mark = warm.next_mark() if warm is not None else None
    store.commit_batch(batch, trackings, clock)
    if warm is not None:
        warm.committed(batch.writer_mark, held)  # type: ignore[arg-type]
    return outcome


class _Unstamped(ValueError):
    """A record the log should never hold: unstamped, dated after its stamp,
    or naming a party the registry does not hold."""

    def __init__(self, event_id: str, why: str | None = None):
        super().__init__(why or f"event {event_id!r} has no recorded_at: the log only holds stamped reports")


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(str(p) for p in describe_validation_error(error))
    return str(error)
