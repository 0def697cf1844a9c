"""The trace projection: log records in, read-model rows out.

For each trace a batch touches, the trace is rebuilt from every report
version the store holds plus the new ones, and its lots and alert steps are
recomputed whole.  Recomputing the trace (not patching counters) is what
makes late and out-of-order reports land exactly where they belong.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from eventsourcing.persistence import PersistenceError, Tracking
from pydantic import ValidationError

from ledger.events import (
    YEAR_MIN,
    LicenseGranted,
    LicenseRevoked,
    content_digest,
    describe_validation_error,
    duplicate_keys,
    event_key,
    parse_event,
)
from ledger.policy import Policy
from ledger.ports import HEADER_DIGEST, LogRecord
from ledger.trace import Outcome, Trace
from ledger.alerts import Alert, alert_id
from ledger.identity import Claim, claims_moved, contested
from ledger.parties import by_id, party_problems
from projections.batch_lock import exclusive
from projections.premises import BatchTrace, recompute_rows
from projections.rows import rebuild_trace, step_row, ts
from projections.store import DeadLetter, ProjectedBatch, ProjectionStore, StoreUnavailable
from projections.warm_traces import WarmTraces

__all__ = ["project_batch", "BatchOutcome", "rebuild_trace", "tracking_name", "QUARANTINED", "quarantine_step",
           "unread_step"]

# The alert kind of a trace the projection could not compute (see project_batch).
QUARANTINED = "quarantined"
# A quarantine stands from the earliest time a report may carry, so every
# as-of answer shows it: the trace cannot be computed at any time.
QUARANTINED_SINCE = datetime(YEAR_MIN, 1, 1, tzinfo=timezone.utc)
QUARANTINE_REASON_LENGTH_MAX = 500
# Errors of the store or the machine, not of a record: never quarantined,
# they stop the batch (nothing of it is committed) as before.
_NOT_A_RECORDS_FAULT = (PersistenceError, StoreUnavailable, OSError, sqlite3.Error, MemoryError)


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


def project_batch(
    store: ProjectionStore,
    log_name: str,
    records: Sequence[LogRecord],
    *,
    policy: Policy,
    now: datetime,
    track: bool = True,
    warm: WarmTraces | None = None,
    trust_recorded_at: bool = False,
    digests_checked: bool = False,
) -> BatchOutcome:
    """Apply one polled batch to the store in one transaction, with tracking.

    A record whose recorded_at is not the ledger's own (Kafka: any producer
    may write) is stamped here: with the log's append time, or ``now``
    when the log keeps none (``LogRecord.stamped_by_ledger``); never the
    sender's claim, unless ``trust_recorded_at`` (an operator migrating a
    system of record, as ``ledger ingest --trust-recorded-at``).

    Holds the store's batch lock from the first read to the commit
    (projections/batch_lock.py): what the batch reads cannot change under it.
    ``track=False`` leaves the offsets alone, for a rebuild that applies the
    log in another order than its offsets and records them at its end.
    ``warm`` keeps the traces folded between batches
    (projections/warm_traces.py), for a projector that polls again and again.

    ``digests_checked``: every record was read from a log that takes only
    reports ingest or the SDK validated (``EventLog.validated_on_append``),
    and its bytes were checked against the digest stored beside it in the
    same snapshot of the log (consumers/projector.py ``rebuild``).  Such a
    record is still read into the contract (the typed report the fold
    needs; a report the contract now refuses, or a key said twice, is
    refused as before), but its content digest is the stored one: it was
    computed when the report was written, and the check just made says the
    bytes are still those it was computed from.

    Quarantine, not stop: when computing the batch fails for a reason in
    the records (any error but the store's or the machine's), each trace of
    the batch is computed alone, without committing, and every trace that
    fails alone is quarantined: its new reports are stored as usual (the
    trace stays the set of its reports, so replay and any arrival order
    give the same answer), its lots are left out, it gets one
    ``quarantined`` alert naming the error, and the batch's records of it
    are dead-lettered with the error.  The rest of the batch is committed
    and the log goes on.  A quarantined trace is recomputed, and stays
    quarantined or is released, whenever a later batch brings a report
    for it.
    """
    with exclusive(store):
        if warm is not None:
            warm.check(store.writer_mark())
        try:
            return _project_batch(store, log_name, records, policy=policy, now=now, track=track, warm=warm,
                                  trust_recorded_at=trust_recorded_at, digests_checked=digests_checked)
        except _NOT_A_RECORDS_FAULT:
            if warm is not None:
                warm.forget()
            raise
        except Exception as error:
            if warm is not None:
                warm.forget()
            quarantine = _failing_traces(store, log_name, records, policy=policy, now=now,
                                         trust_recorded_at=trust_recorded_at, digests_checked=digests_checked)
            if not quarantine:
                raise error  # no trace fails alone: not a record's fault
        try:
            return _project_batch(store, log_name, records, policy=policy, now=now, track=track, warm=None,
                                  quarantine=quarantine, trust_recorded_at=trust_recorded_at,
                                  digests_checked=digests_checked)
        except _NOT_A_RECORDS_FAULT:
            raise
        except Exception as error:
            # The traces fail together though none of the others fails
            # alone: quarantine every trace of the batch, with this error.
            everything = dict.fromkeys(_batch_keys(records), _reason(error))
            return _project_batch(store, log_name, records, policy=policy, now=now, track=track, warm=None,
                                  quarantine={**everything, **quarantine}, trust_recorded_at=trust_recorded_at,
                                  digests_checked=digests_checked)


def _batch_keys(records: Sequence[LogRecord]) -> list[str]:
    """The trace ids (``license:<id>`` for license reports) of the records that parse."""
    keys = set()
    for record in records:
        try:
            event = parse_event(record.value)
        except (ValidationError, UnicodeDecodeError):
            continue
        keys.add(event_key(event))
    return sorted(keys)


def _failing_traces(store: ProjectionStore, log_name: str, records: Sequence[LogRecord], *,
                    policy: Policy, now: datetime, trust_recorded_at: bool = False,
                    digests_checked: bool = False) -> dict[str, str]:
    """Trace id -> why, for every trace of the batch whose records, computed
    alone against the store (nothing committed), fail.

    Found by halving: a group of traces that computes is not searched
    further, so a batch of thousands of traces with one poisoned trace
    costs a few dozen dry runs, not thousands."""
    by_key: dict[str, list[LogRecord]] = defaultdict(list)
    for record in records:
        try:
            by_key[event_key(parse_event(record.value))].append(record)
        except (ValidationError, UnicodeDecodeError):
            if record.key:  # its trace is recomputed to carry its alert
                by_key[record.key].append(record)

    def failing(keys: list[str]) -> dict[str, str]:
        try:
            _project_batch(store, log_name, [r for k in keys for r in by_key[k]], policy=policy, now=now,
                           track=False, warm=None, commit=False, trust_recorded_at=trust_recorded_at,
                           digests_checked=digests_checked)
            return {}
        except _NOT_A_RECORDS_FAULT:
            raise
        except Exception as error:
            if len(keys) == 1:
                return {keys[0]: _reason(error)}
        half = len(keys) // 2
        return {**failing(keys[:half]), **failing(keys[half:])}

    return failing(sorted(by_key)) if by_key else {}


def _reason(error: Exception) -> str:
    """Why a trace is quarantined: one line, bounded (it is shown in alert tables)."""
    text = " ".join(f"{type(error).__name__}: {_why(error)}".split())
    if len(text) > QUARANTINE_REASON_LENGTH_MAX:
        text = text[: QUARANTINE_REASON_LENGTH_MAX - 3] + "..."
    return text


def unread_step(trace_id: str, value_digest: str, error: str) -> Alert:
    """The alert a trace carries for a record about it (by its log key) that
    could not be read and is in the dead letters; named by the SHA-256 of
    its bytes, not its log position, so arrival order does not matter."""
    if len(error) > QUARANTINE_REASON_LENGTH_MAX:
        error = error[: QUARANTINE_REASON_LENGTH_MAX - 3] + "..."
    return _quarantined(trace_id, (value_digest,),
                        f"a record about trace {trace_id!r} (sha256 {value_digest[:16]}) could not be read and "
                        f"is quarantined in the dead letters: {error}")


def quarantine_step(trace_id: str, reason: str) -> Alert:
    """The alert a quarantined trace carries, standing at every as-of time."""
    return _quarantined(trace_id, (), f"trace {trace_id!r} could not be projected and is quarantined: its "
                                      f"reports are kept, its lots are not shown; {reason}")


def _quarantined(trace_id: str, key: tuple[str, ...], message: str) -> Alert:
    """A ``quarantined`` alert on a trace: for the operator, standing from the start of time."""
    return Alert(alert_id=alert_id(QUARANTINED, trace_id, "", *key), kind=QUARANTINED, trace_id=trace_id,
                 lot_id="", party="", due_at=QUARANTINED_SINCE, quantity=None, unit=None, message=message)


def _project_batch(
    store: ProjectionStore,
    log_name: str,
    records: Sequence[LogRecord],
    *,
    policy: Policy,
    now: datetime,
    track: bool,
    warm: WarmTraces | None,
    trust_recorded_at: bool = False,
    quarantine: dict[str, str] | None = None,
    commit: bool = True,
    digests_checked: bool = False,
) -> BatchOutcome:
    quarantine = quarantine or {}
    quarantined: dict[str, list[tuple[LogRecord, object, str]]] = defaultdict(list)
    # Records that could not be read, by their log key (a trace id): each
    # raises an alert on that trace, which is recomputed to carry it.
    unread: dict[str, list[tuple[str, str]]] = defaultdict(list)
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
            digest = _stored_digest(record) if digests_checked else None
            duplicate = duplicate_keys(record.value)
            if duplicate:
                raise _Unstamped(event.event_id, str(duplicate[0]))
            if not record.stamped_by_ledger and not trust_recorded_at:
                event = event.stamped(record.appended_at or now, overwrite=True)
            if event.recorded_at is None:
                raise _Unstamped(event.event_id)
            future = event.future_problem()
            if future is not None:  # dated beyond the skew after the ledger's stamp
                raise _Unstamped(event.event_id, str(future))
            unknown = party_problems(event, registry)
            if unknown:  # a producer writing around ingest and the SDK
                raise _Unstamped(event.event_id, "; ".join(str(p) for p in unknown))
        except (ValidationError, _Unstamped, UnicodeDecodeError) as error:
            dead = DeadLetter(log_name, record.partition, record.offset, record.key, record.value, _why(error))
            batch.dead_letters.append(dead)
            if record.key and not record.key.startswith("license:"):
                unread[record.key].append((hashlib.sha256(record.value).hexdigest(), dead.error))
            continue
        digest = digest or content_digest(event)
        if event_key(event) in quarantine:
            quarantined[event_key(event)].append((record, event, digest))
            continue
        if isinstance(event, (LicenseGranted, LicenseRevoked)):
            batch.licenses.append((event.license_id, event.event_id, digest, event.model_dump_json()))
            license_events.append(event)
            outcome.accepted += 1
            continue
        by_trace[event.trace_id].append((event, digest))

    for key in sorted(quarantined):
        for record, _event, _digest in quarantined[key]:
            batch.dead_letters.append(DeadLetter(log_name, record.partition, record.offset, record.key,
                                                 record.value, f"quarantined: {quarantine[key]}"))
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
                Claim(trace_id, digest, event.recorded_at, event.reporter))  # type: ignore[attr-defined]
        if not new_versions:
            continue  # every report was already known: nothing changes
        traces[trace_id] = trace
        new_by_trace[trace_id] = new_versions
    # An event id names one report ledger-wide (ledger/identity.py): one
    # lookup of every event id the recomputed traces hold, across traces.
    fresh = {trace_id: BatchTrace(new_by_trace[trace_id], trace.versions()) for trace_id, trace in traces.items()}
    ids = sorted({v.event_id for batch_trace in fresh.values() for v in batch_trace.versions})
    stored_claims = store.event_claims(ids) if ids else {}
    # A quarantined trace: its reports stored, no versions evaluated (so its
    # old lot rows go, and the ceilings they counted are recounted).
    for trace_id in sorted(k for k in quarantined if not k.startswith("license:")):
        new_versions = [(event.event_id, digest, ts(event.recorded_at), event.model_dump_json())  # type: ignore[attr-defined]
                        for _record, event, digest in quarantined[trace_id]]
        fresh[trace_id] = BatchTrace(new_versions, [])
    # Traces not in this batch whose claims it changed: the batch's version
    # of an event id was recorded before theirs (or it moves which trace
    # holds the first).
    moved = sorted((claims_moved(stored_claims, batch_claims) | set(unread)) - set(fresh))
    # Load the rest, evaluate, make rows: projections/premises.py.
    batch.traces.extend(recompute_rows(store, fresh, license_events, policy=policy,  # type: ignore[arg-type]
                                       claims=contested(stored_claims, batch_claims), batch_claims=batch_claims,
                                       also=moved))
    # Every trace written carries an alert per record about it in the dead
    # letters (stored, and this batch's), and one if it is quarantined.
    written = sorted({rows.trace_id for rows in batch.traces if not rows.trace_id.startswith("license:")})
    dead_by_trace = store.unread_records(written) if written else {}
    for rows in batch.traces:
        if rows.trace_id.startswith("license:"):
            continue
        for where in sorted({*dead_by_trace.get(rows.trace_id, ()), *unread.get(rows.trace_id, ())}):
            rows.steps.append(step_row(unread_step(rows.trace_id, *where)))
        if rows.trace_id in quarantined:
            rows.steps.append(step_row(quarantine_step(rows.trace_id, quarantine[rows.trace_id])))
    outcome.traces = len(batch.traces)
    outcome.dead_letters = len(batch.dead_letters)
    outcome.dead = batch.dead_letters
    trackings = [Tracking(tracking_name(log_name, p), o) for p, o in sorted(last_offset.items()) if track]
    if not commit:
        return outcome
    batch.writer_mark = warm.next_mark() if warm is not None else None
    store.commit_batch(batch, trackings, now)
    if warm is not None:
        warm.committed(batch.writer_mark, held)  # type: ignore[arg-type]
    return outcome


def _stored_digest(record: LogRecord) -> str | None:
    """The content digest stored with ``record`` (``HEADER_DIGEST``), or None."""
    for name, value in record.headers:
        if name == HEADER_DIGEST:
            return value.decode()
    return None


class _Unstamped(ValueError):
    """A record the log should never hold: unstamped, dated after its stamp,
    or naming a party the registry does not hold, or naming a key twice."""

    def __init__(self, event_id: str, why: str | None = None):
        super().__init__(why or f"event {event_id!r} has no recorded_at: the log only holds stamped reports")


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(str(p) for p in describe_validation_error(error))
    return str(error)
